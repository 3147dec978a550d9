"""TorchScript export for the artifact step.

The exported module takes inputs as the data files hold them (raw features, images as floats in [0, 1]
(C, H, W), token ids) and applies the training normalization itself, so serving needs no preprocessing
beyond tokenizing text. Autoencoder reconstructions and GAN samples come back in that raw space too.
The GAN exports its generator: input a (B, latent_dim) noise batch.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.data.stats import broadcast_shape
from dljobs.workloads.models.dense import GAN

EXAMPLE_SEED = 1234


def example_input(info: DataInfo, batch: int = 2, *, model: nn.Module | None = None) -> torch.Tensor:
    """A deterministic batch shaped like the model's input (for a GAN given as `model`: latent noise)."""
    generator = torch.Generator().manual_seed(EXAMPLE_SEED)
    if isinstance(model, GAN):
        return torch.randn(batch, model.latent_dim, generator=generator)
    if info.input_kind == "tokens":
        length = info.input_shape[0]
        ids = torch.randint(1, max(info.vocab_size or 2, 2), (batch, length), generator=generator)
        if length > 1:
            ids[-1, length // 2 :] = 0  # one padded example
        return ids
    return torch.randn((batch, *info.input_shape), generator=generator)


class NormalizedModel(nn.Module):
    """Raw inputs -> (x - shift) / scale -> model -> (for reconstructions and samples) back to raw space."""

    def __init__(
        self,
        model: nn.Module,
        shift: torch.Tensor,
        scale: torch.Tensor,
        *,
        normalize_input: bool,
        denormalize_output: bool,
    ) -> None:
        super().__init__()
        self.model = model
        self.normalize_input = normalize_input
        self.denormalize_output = denormalize_output
        self.register_buffer("shift", shift)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_input:
            x = (x - self.shift) / self.scale
        y = self.model(x)
        if self.denormalize_output:
            y = y * self.scale + self.shift
        return y


def serving_module(model: nn.Module, info: DataInfo) -> nn.Module:
    """The eager module that gets exported: a CPU copy in eval mode, with the normalization built in."""
    model = copy.deepcopy(model).cpu().eval()
    is_gan = isinstance(model, GAN)
    inner: nn.Module = model.generator if is_gan else model
    normalization = info.preprocessing.get("normalization")
    if not normalization:
        return inner
    shape = broadcast_shape(info.input_kind, len(normalization["shift"]))
    shift = torch.tensor(normalization["shift"], dtype=torch.float32).reshape(shape)
    scale = torch.tensor(normalization["scale"], dtype=torch.float32).reshape(shape)
    reconstructs = info.task in ("reconstruction", "generation")
    return NormalizedModel(
        inner, shift, scale, normalize_input=not is_gan, denormalize_output=reconstructs
    ).eval()


def export_torchscript(model: nn.Module, info: DataInfo) -> torch.jit.ScriptModule:
    """Trace the model (GAN: its generator) for serving; the original model is left as it was."""
    module = serving_module(model, info)
    example = example_input(info, model=model)
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export but still what serving loads; the RNN
        # modules' shape checks become trace constants, which is what a fixed input layout wants.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(module, example, check_trace=False)
    return traced
