"""Parameters of the built-in models, one strict model each.

These live in the spec (not in the workloads) so that a typo in `workload.params` is caught by
`dljobs validate` and by the controller without importing torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dljobs.spec.base import StrictModel

Activation = Literal["relu", "gelu", "tanh", "leaky_relu", "silu", "sigmoid"]
Width = Field(ge=1, le=65536)


class MLPParams(StrictModel):
    """A fully connected classifier or regressor (seed tutorials: the MNIST MLP)."""

    hidden: list[int] = Field(default=[128, 64], max_length=64)
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    activation: Activation = "relu"
    batch_norm: bool = False

    @model_validator(mode="after")
    def _widths(self) -> MLPParams:
        _check_widths(self.hidden, "hidden")
        return self


class CNNParams(StrictModel):
    """Conv blocks (conv, batch norm, activation, pooling, dropout), a dense head; adapts to input size."""

    channels: list[int] = Field(default=[32, 64], min_length=1, max_length=16)
    kernel_size: int = Field(default=3, ge=1, le=15)
    hidden: int = Field(default=128, ge=1, le=65536)
    dropout: float = Field(default=0.25, ge=0.0, lt=1.0)
    batch_norm: bool = True
    pool: Literal["max", "avg"] = "max"
    activation: Activation = "relu"

    @model_validator(mode="after")
    def _widths(self) -> CNNParams:
        _check_widths(self.channels, "channels")
        return self


class RNNParams(StrictModel):
    """An LSTM or GRU over token sequences (text) or feature sequences (time series)."""

    embedding_dim: int = Field(default=64, ge=1, le=4096)
    hidden_size: int = Field(default=128, ge=1, le=8192)
    num_layers: int = Field(default=2, ge=1, le=16)
    bidirectional: bool = False
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)


class TransformerParams(StrictModel):
    """A Transformer encoder classifier: token embedding, positional encoding, self-attention, layer norm."""

    d_model: int = Field(default=64, ge=8, le=4096)
    nhead: int = Field(default=4, ge=1, le=64)
    num_layers: int = Field(default=2, ge=1, le=48)
    dim_feedforward: int = Field(default=128, ge=1, le=16384)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_length: int = Field(default=512, ge=1, le=65536)
    pooling: Literal["mean", "cls"] = "mean"
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerParams:
        if self.d_model % self.nhead:
            raise ValueError(f"d_model: {self.d_model} is not divisible by nhead ({self.nhead})")
        return self


class AutoencoderParams(StrictModel):
    """A dense autoencoder: the encoder narrows to `latent_dim`, the decoder mirrors it."""

    hidden: list[int] = Field(default=[128, 64], max_length=32)
    latent_dim: int = Field(default=16, ge=1, le=65536)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    activation: Activation = "relu"

    @model_validator(mode="after")
    def _widths(self) -> AutoencoderParams:
        _check_widths(self.hidden, "hidden")
        return self


class GANParams(StrictModel):
    """A generator and a discriminator trained against each other, each with its own optimizer."""

    latent_dim: int = Field(default=32, ge=1, le=4096)
    generator_hidden: list[int] = Field(default=[128, 256], min_length=1, max_length=16)
    discriminator_hidden: list[int] = Field(default=[256, 128], min_length=1, max_length=16)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    discriminator_lr: float | None = Field(default=None, gt=0.0, le=10.0)
    label_smoothing: float = Field(default=0.1, ge=0.0, lt=0.5)

    @model_validator(mode="after")
    def _widths(self) -> GANParams:
        _check_widths(self.generator_hidden, "generator_hidden")
        _check_widths(self.discriminator_hidden, "discriminator_hidden")
        return self


def _check_widths(widths: list[int], name: str) -> None:
    for i, width in enumerate(widths):
        if not 1 <= width <= 65536:
            raise ValueError(f"{name}: item {i} is {width}; each width must be between 1 and 65536")


BUILTIN_MODELS: dict[str, type[StrictModel]] = {
    "mlp": MLPParams,
    "cnn": CNNParams,
    "lstm": RNNParams,
    "gru": RNNParams,
    "transformer": TransformerParams,
    "autoencoder": AutoencoderParams,
    "gan": GANParams,
}
