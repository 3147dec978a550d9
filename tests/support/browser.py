"""Headless Chromium for the dashboard's end-to-end tests: Debian's `chromium` and `chromium-driver`,
installed by scripts/install-browser.sh when missing, driven with Selenium (no driver download: the
driver's path is given, so Selenium Manager never runs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install-browser.sh"
CHROMIUM = os.environ.get("DLJOBS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DLJOBS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


def ensure_browser() -> None:
    """Install chromium and its driver if they are not there (once per session; a no-op when present)."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        raise RuntimeError(
            f"{INSTALL_SCRIPT.name} could not install chromium and chromium-driver "
            f"(exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )


def start_chrome(download_dir: Path, profile_dir: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--window-size=1400,1000",
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)}
    )
    return driver
