"""Fully connected models: the MLP, the dense autoencoder and the GAN (seed tutorials: MNIST MLP,
Keras autoencoder, simple GAN)."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from dljobs.spec.params import AutoencoderParams, GANParams, MLPParams
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.models.layers import activation, flat_size, output_size


def _dense_stack(sizes: list[int], act: str, dropout: float, batch_norm: bool = False) -> nn.Sequential:
    """Linear -> (batch norm) -> activation -> (dropout) for each consecutive pair in `sizes`."""
    layers: list[nn.Module] = []
    for width_in, width_out in itertools.pairwise(sizes):
        block: list[nn.Module] = [nn.Linear(width_in, width_out)]
        if batch_norm:
            block.append(nn.BatchNorm1d(width_out))
        block.append(activation(act))
        if dropout > 0:
            block.append(nn.Dropout(dropout))
        layers.append(nn.Sequential(*block))
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """Flatten, hidden dense blocks, and a linear head (logits, or regression values)."""

    def __init__(self, info: DataInfo, params: MLPParams) -> None:
        super().__init__()
        in_features = flat_size(info.input_shape)
        self.features = _dense_stack(
            [in_features, *params.hidden], params.activation, params.dropout, params.batch_norm
        )
        self.head = nn.Linear(params.hidden[-1] if params.hidden else in_features, output_size(info, "mlp"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.flatten(1)))


class Autoencoder(nn.Module):
    """Encoder narrowing to `latent_dim`, a mirrored decoder; inputs flattened and reshaped back."""

    def __init__(self, info: DataInfo, params: AutoencoderParams) -> None:
        super().__init__()
        self.input_shape = tuple(info.input_shape)
        in_features = flat_size(self.input_shape)
        widths = [in_features, *params.hidden]
        self.encoder = nn.Sequential(
            _dense_stack(widths, params.activation, params.dropout), nn.Linear(widths[-1], params.latent_dim)
        )
        decoder_widths = [params.latent_dim, *reversed(params.hidden)]
        self.decoder = _dense_stack(decoder_widths, params.activation, params.dropout)
        self.head = nn.Linear(decoder_widths[-1], in_features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        decoded = self.head(self.decoder(self.encode(x)))
        return decoded.view((x.size(0), *self.input_shape))


class Generator(nn.Module):
    """Latent noise -> dense blocks with batch norm -> tanh output shaped like one example."""

    def __init__(self, info: DataInfo, params: GANParams) -> None:
        super().__init__()
        self.output_shape = tuple(info.input_shape)
        widths = [params.latent_dim, *params.generator_hidden]
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(widths):
            layers.append(
                nn.Sequential(nn.Linear(width_in, width_out), nn.BatchNorm1d(width_out), nn.LeakyReLU(0.2))
            )
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], flat_size(self.output_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.body(z))).view((z.size(0), *self.output_shape))


class Discriminator(nn.Module):
    """An example -> one logit: real (high) or generated (low). Train it with BCEWithLogits."""

    def __init__(self, info: DataInfo, params: GANParams) -> None:
        super().__init__()
        widths = [flat_size(info.input_shape), *params.discriminator_hidden]
        self.body = _dense_stack(widths, "leaky_relu", params.dropout)
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.flatten(1)))


class GAN(nn.Module):
    """Holds `generator` and `discriminator`; calling it generates from a (B, latent_dim) noise batch.

    Generated examples live in the training data's normalized space: min-max scaled to [-1, 1], which the
    generator's tanh covers. `head` is the generator's output layer.
    """

    def __init__(self, info: DataInfo, params: GANParams) -> None:
        super().__init__()
        self.latent_dim = params.latent_dim
        self.generator = Generator(info, params)
        self.discriminator = Discriminator(info, params)

    @property
    def head(self) -> nn.Linear:
        return self.generator.head

    def sample_latent(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = self.generator.head.weight.device
        return torch.randn(batch, self.latent_dim, generator=generator).to(device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)
