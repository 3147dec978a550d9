"""Small building blocks shared by the built-in models."""

from __future__ import annotations

import math

import torch
from torch import nn

from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


def flat_size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def output_size(info: DataInfo, model: str) -> int:
    """Width of the head: one logit per class, or one output per regression target."""
    if info.task == "classification" and info.num_classes:
        return info.num_classes
    if info.task == "regression":
        return info.target_dim or 1
    raise WorkloadError(
        f"model '{model}' predicts classes or values, not a {info.task} task", field="workload.model"
    )


def masked_mean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean over the time axis of (B, T, D) `values`, counting only positions where `keep` (B, T) is true."""
    weights = keep.unsqueeze(-1).to(values.dtype)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine position encodings (Vaswani et al.), added to the embeddings."""

    def __init__(self, max_length: int, dim: int) -> None:
        super().__init__()
        position = torch.arange(max_length, dtype=torch.float32).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        table = torch.zeros(max_length, dim)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
        self.register_buffer("table", table.unsqueeze(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[:, : x.size(1)]


class LearnedPositions(nn.Module):
    """A trained vector per position, added to the embeddings."""

    def __init__(self, max_length: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.normal_(self.table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[:, : x.size(1)]
