"""Sequence models (seed tutorial: LSTM text classifier, Transformer encoder).

Both take token ids (B, L), padded with 0 at the end, through an embedding, or continuous sequences
(B, T, C) through a linear projection per time step (kept under the same name, `embedding`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dljobs.spec.params import RNNParams, TransformerParams
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.models.layers import LearnedPositions, SinusoidalPositions, masked_mean, output_size


def _input_layer(info: DataInfo, dim: int) -> nn.Module:
    if info.input_kind == "tokens":
        assert info.vocab_size, "token data must say its vocabulary size"
        return nn.Embedding(info.vocab_size, dim, padding_idx=0)
    return nn.Linear(info.input_shape[-1], dim)


class RecurrentNet(nn.Module):
    """Embedding -> stacked (bi)LSTM or GRU -> mean over the non-padding steps -> dropout -> head."""

    def __init__(self, info: DataInfo, params: RNNParams, cell: str) -> None:
        super().__init__()
        self.tokens = info.input_kind == "tokens"
        self.embedding = _input_layer(info, params.embedding_dim)
        rnn_type = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_type(
            params.embedding_dim,
            params.hidden_size,
            num_layers=params.num_layers,
            batch_first=True,
            dropout=params.dropout if params.num_layers > 1 else 0.0,
            bidirectional=params.bidirectional,
        )
        self.dropout = nn.Dropout(params.dropout)
        directions = 2 if params.bidirectional else 1
        self.head = nn.Linear(params.hidden_size * directions, output_size(info, cell))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = x != 0 if self.tokens else torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        outputs, _ = self.rnn(self.embedding(x))
        return self.head(self.dropout(masked_mean(outputs, keep)))


class TransformerNet(nn.Module):
    """Embedding (scaled by sqrt(d_model)) + positions -> pre-norm Transformer encoder with a padding mask
    -> layer norm -> mean over non-padding positions, or a learned [CLS] token -> head."""

    def __init__(self, info: DataInfo, params: TransformerParams) -> None:
        super().__init__()
        self.tokens = info.input_kind == "tokens"
        self.use_cls = params.pooling == "cls"
        length = info.input_shape[0] + (1 if self.use_cls else 0)
        if length > params.max_length:
            raise WorkloadError(
                f"sequences of {info.input_shape[0]} steps{' plus the [CLS] token' if self.use_cls else ''} "
                f"exceed max_length {params.max_length}: raise it or shorten data.max_length",
                field="workload.params.max_length",
            )
        self.scale = math.sqrt(params.d_model) if self.tokens else 1.0
        self.embedding = _input_layer(info, params.d_model)
        positions = SinusoidalPositions if params.positional == "sinusoidal" else LearnedPositions
        self.positions = positions(params.max_length, params.d_model)
        if self.use_cls:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, params.d_model))
            nn.init.normal_(self.cls_token, std=0.02)
        layer = nn.TransformerEncoderLayer(
            params.d_model,
            params.nhead,
            params.dim_feedforward,
            params.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, params.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(params.d_model)
        self.dropout = nn.Dropout(params.dropout)
        self.head = nn.Linear(params.d_model, output_size(info, "transformer"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.size(0)
        if self.tokens:
            padding = x == 0
            # Padding comes last, so only an empty text has padding at step 0: leave that step visible,
            # or its attention would have nothing to attend to.
            padding = torch.cat([torch.zeros_like(padding[:, :1]), padding[:, 1:]], dim=1)
        else:
            padding = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        hidden = self.embedding(x) * self.scale
        if self.use_cls:
            hidden = torch.cat([self.cls_token.expand(batch, -1, -1), hidden], dim=1)
            padding = torch.cat([torch.zeros_like(padding[:, :1]), padding], dim=1)
        hidden = self.dropout(self.positions(hidden))
        hidden = self.norm(self.encoder(hidden, src_key_padding_mask=padding))
        pooled = hidden[:, 0] if self.use_cls else masked_mean(hidden, ~padding)
        return self.head(self.dropout(pooled))
