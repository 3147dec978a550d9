"""bf16 on CPUs: the environment dljobs gives CPU workers makes a bf16 autocast step run on this machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dljobs.workloads.train.cpu_features import _PROBE, cpu_bf16_env


def test_bf16_runs_with_the_workers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    env = dict(os.environ)
    extra = cpu_bf16_env("bf16", use_gpu=False)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**env, **extra}, capture_output=True, timeout=300
    )
    assert result.returncode == 0, (extra, result.stderr[-500:])


def test_nothing_is_set_where_it_is_not_needed() -> None:
    assert cpu_bf16_env("fp32", use_gpu=False) == {}
    assert cpu_bf16_env("bf16", use_gpu=True) == {}
