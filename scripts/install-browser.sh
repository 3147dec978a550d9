#!/usr/bin/env bash
# Debian's Chromium and its WebDriver, for the web dashboard's end-to-end tests (tests/controller/ui).
# Does nothing when both are already installed; needs root (or sudo) and the Debian package archive.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -n "$0" "$@"
    fi
    echo "install-browser: run as root to install chromium and chromium-driver" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# several installs may run at once on a shared machine: wait for dpkg's lock rather than fail
apt_opts=(-o DPkg::Lock::Timeout=600 -o APT::Install-Recommends=false)
if ! apt-get "${apt_opts[@]}" install -y chromium chromium-driver; then
    apt-get "${apt_opts[@]}" update
    apt-get "${apt_opts[@]}" install -y chromium chromium-driver
fi
command -v chromium >/dev/null && command -v chromedriver >/dev/null
