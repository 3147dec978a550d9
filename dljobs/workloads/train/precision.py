"""Devices and numeric precision: autocast, the fp16 gradient scaler, host-to-device copies.

- fp32: no autocast.
- bf16: `torch.autocast` in bfloat16 on CPU and GPU; no scaler (bf16 has fp32's range).
- fp16: `torch.autocast` in float16 with a `torch.amp.GradScaler`; GPUs only (the spec refuses fp16 on CPUs).

On a GPU the process group uses NCCL, data loaders pin host memory and batches move with non_blocking
copies, which overlap the copy with compute because the source is pinned.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from dljobs.workloads.errors import WorkloadError

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
NOTHING = contextlib.nullcontext()  # reusable: what fp32 steps enter


def distributed_backend(use_gpu: bool) -> str:
    """The torch.distributed backend: NCCL between GPUs, gloo between CPUs."""
    return "nccl" if use_gpu else "gloo"


@dataclass(frozen=True)
class Precision:
    """How one worker computes: its device and the precision the spec asks for."""

    device: torch.device
    name: str = "fp32"  # fp32 | bf16 | fp16

    def __post_init__(self) -> None:
        if self.name == "fp16" and self.device.type != "cuda":
            raise WorkloadError(
                "fp16 needs a GPU (this worker has none); use bf16 on CPUs", field="training.precision"
            )

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    @property
    def pin_memory(self) -> bool:
        """Whether data loaders should pin host memory (only worth it when copying to a GPU)."""
        return self.on_gpu

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = _AUTOCAST_DTYPES.get(self.name)
        if dtype is None:
            return NOTHING
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler: active for fp16, a pass-through otherwise (one code path for all)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")

    def to_device(self, value: Any) -> Any:
        """Move a tensor (or a tuple/list of them) to the device; non_blocking from pinned memory."""
        if self.device.type == "cpu":
            return value  # batches are made on the CPU
        if isinstance(value, torch.Tensor):
            return value.to(self.device, non_blocking=self.on_gpu)
        if isinstance(value, (list, tuple)):
            return type(value)(self.to_device(v) for v in value)
        return value


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Deterministic kernels while the block runs (warn-only: an op without one still runs)."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
