"""The CNN (seed tutorial: the CIFAR CNN): conv blocks with batch norm, pooling and dropout, then a dense
head. Images (C, H, W) use 2-D convolutions, sequences (T, C) 1-D convolutions over time."""

from __future__ import annotations

import torch
from torch import nn

from dljobs.spec.params import CNNParams
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.models.layers import activation, output_size

MAX_FINAL_SIDE = {2: 8, 1: 16}  # larger feature maps are average-pooled down to this side


class CNN(nn.Module):
    """Each block: conv (same padding) -> batch norm -> activation -> pool by 2 -> dropout; then flatten ->
    dense -> batch norm -> activation -> dropout -> head.

    Pooling stops once a side is 1, so small inputs (8x8 digits) take any number of blocks; large inputs
    are average-pooled to at most 8x8 (16 steps for sequences) before the dense layer.
    """

    def __init__(self, info: DataInfo, params: CNNParams) -> None:
        super().__init__()
        self.sequence = info.input_kind == "sequence"
        dims = 1 if self.sequence else 2
        if self.sequence:
            sides = [info.input_shape[0]]
            channels_in = info.input_shape[1]
        else:
            channels_in, *sides = info.input_shape
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        pool_type = {
            "max": nn.MaxPool1d if dims == 1 else nn.MaxPool2d,
            "avg": nn.AvgPool1d if dims == 1 else nn.AvgPool2d,
        }[params.pool]
        blocks: list[nn.Module] = []
        for width in params.channels:
            block: list[nn.Module] = [
                conv(channels_in, width, params.kernel_size, padding=params.kernel_size // 2)
            ]
            sides = [s + 2 * (params.kernel_size // 2) - params.kernel_size + 1 for s in sides]
            if params.batch_norm:
                block.append(norm(width))
            block.append(activation(params.activation))
            if min(sides) >= 2:
                block.append(pool_type(2))
                sides = [s // 2 for s in sides]
            if params.dropout > 0:
                block.append(nn.Dropout(params.dropout))
            blocks.append(nn.Sequential(*block))
            channels_in = width
        limit = MAX_FINAL_SIDE[dims]
        if max(sides) > limit:
            sides = [min(s, limit) for s in sides]
            adaptive = nn.AdaptiveAvgPool1d if dims == 1 else nn.AdaptiveAvgPool2d
            blocks.append(adaptive(sides[0] if dims == 1 else tuple(sides)))
        self.features = nn.Sequential(*blocks)
        flat = channels_in * int(torch.tensor(sides).prod())
        dense: list[nn.Module] = [nn.Flatten(), nn.Linear(flat, params.hidden)]
        if params.batch_norm:  # as in the seed's CIFAR CNN; keeps the wide dense layer's units alive
            dense.append(nn.BatchNorm1d(params.hidden))
        dense += [activation(params.activation), nn.Dropout(params.dropout)]
        self.hidden = nn.Sequential(*dense)
        self.head = nn.Linear(params.hidden, output_size(info, "cnn"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sequence:  # (B, T, C) -> (B, C, T)
            x = x.transpose(1, 2)
        return self.head(self.hidden(self.features(x)))
