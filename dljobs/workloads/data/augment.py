"""Batch augmentation in plain torch, for training batches only.

Every random choice is drawn from a CPU `torch.Generator` (so a seed fixes the sequence of augmentations
whatever device the batch is on) and then applied on the batch's own device. Images are (B, C, H, W);
spatial and colour operations apply to images only, mixup to any float inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dljobs.spec.data import AugmentSpec
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.data.stats import broadcast_shape
from dljobs.workloads.errors import WorkloadError

IMAGE_OPERATIONS = ("hflip", "vflip", "crop_padding", "rotation", "brightness", "contrast", "cutout")


def hflip(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability `p`."""
    chosen = _bernoulli(images.size(0), p, generator, images.device).view(-1, 1, 1, 1)
    return torch.where(chosen, images.flip(-1), images)


def vflip(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image top-bottom with probability `p`."""
    chosen = _bernoulli(images.size(0), p, generator, images.device).view(-1, 1, 1, 1)
    return torch.where(chosen, images.flip(-2), images)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each side with zeros by `padding`, then cut a window of the original size at a random offset."""
    if padding <= 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(images.device)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(images.device)
    rows = (top[:, None] + torch.arange(height, device=images.device))[:, :, None]  # (B, H, 1)
    cols = (left[:, None] + torch.arange(width, device=images.device))[:, None, :]  # (B, 1, W)
    index = torch.arange(batch, device=images.device)[:, None, None]
    # Advanced indexing on (B, C, H+2p, W+2p) with the channel slice gives (B, H, W, C).
    return padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2).contiguous()


def rotate(images: torch.Tensor, max_degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image by a uniform angle in [-max_degrees, max_degrees] (bilinear, zeros outside)."""
    if max_degrees <= 0:
        return images
    batch = images.size(0)
    angles = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros = torch.zeros(batch)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def adjust_brightness(images: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """Multiply each image by a factor uniform in [1 - amount, 1 + amount]."""
    factors = _uniform_factors(images.size(0), amount, generator, images)
    return images * factors


def adjust_contrast(images: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """Scale each image's distance from its own per-channel mean by a factor in [1 - amount, 1 + amount]."""
    factors = _uniform_factors(images.size(0), amount, generator, images)
    mean = images.mean(dim=(2, 3), keepdim=True)
    return (images - mean) * factors + mean


def cutout(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a `size` x `size` square (clipped at the borders) centred at a random pixel of each image."""
    if size <= 0:
        return images
    batch, _, height, width = images.shape
    centre_y = torch.randint(0, height, (batch,), generator=generator).to(images.device)
    centre_x = torch.randint(0, width, (batch,), generator=generator).to(images.device)
    top, left = centre_y - size // 2, centre_x - size // 2
    ys = torch.arange(height, device=images.device)[None, :, None]
    xs = torch.arange(width, device=images.device)[None, None, :]
    inside = (
        (ys >= top[:, None, None])
        & (ys < (top + size)[:, None, None])
        & (xs >= left[:, None, None])
        & (xs < (left + size)[:, None, None])
    )
    return images.masked_fill(inside[:, None], 0.0)


def mixup(
    inputs: torch.Tensor, targets: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Blend the batch with a shuffled copy of itself: lam ~ Beta(alpha, alpha).

    Returns (mixed inputs, targets, the shuffled targets, lam); the loss is
    lam * loss(outputs, targets) + (1 - lam) * loss(outputs, shuffled targets).
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    order = torch.randperm(inputs.size(0), generator=generator).to(inputs.device)
    mixed = lam * inputs + (1.0 - lam) * inputs[order]
    return mixed, targets, targets[order], lam


@dataclass
class AugmentedBatch:
    """A training batch after augmentation; `loss` mixes the criterion over both targets under mixup."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mixed_targets: torch.Tensor | None = None
    lam: float = 1.0

    def loss(
        self, criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], outputs: torch.Tensor
    ) -> torch.Tensor:
        if self.mixed_targets is None:
            return criterion(outputs, self.targets)
        first = criterion(outputs, self.targets)
        return self.lam * first + (1.0 - self.lam) * criterion(outputs, self.mixed_targets)


class Augmenter:
    """The operations an `AugmentSpec` turns on, in a fixed order: flips, crop, rotation, brightness,
    contrast, cutout, then mixup. Brightness and contrast act on raw pixel values (the normalization in
    `info` is undone and redone around them); crop, rotation and cutout fill with 0 in normalized space,
    the training mean."""

    def __init__(self, spec: AugmentSpec, info: DataInfo, *, seed: int) -> None:
        self.spec = spec
        self.generator = torch.Generator().manual_seed(seed)
        self._normalization = info.preprocessing.get("normalization")
        self._kind = info.input_kind

    def _raw_space(
        self, images: torch.Tensor, operation: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        if not self._normalization:
            return operation(images)
        shape = broadcast_shape(self._kind, len(self._normalization["shift"]))
        shift = torch.tensor(self._normalization["shift"], dtype=images.dtype, device=images.device).view(
            shape
        )
        scale = torch.tensor(self._normalization["scale"], dtype=images.dtype, device=images.device).view(
            shape
        )
        return (operation(images * scale + shift) - shift) / scale

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> AugmentedBatch:
        spec, generator = self.spec, self.generator
        x = inputs
        if spec.hflip:
            x = hflip(x, generator)
        if spec.vflip:
            x = vflip(x, generator)
        if spec.crop_padding:
            x = random_crop(x, spec.crop_padding, generator)
        if spec.rotation:
            x = rotate(x, spec.rotation, generator)
        if spec.brightness:
            x = self._raw_space(x, lambda images: adjust_brightness(images, spec.brightness, generator))
        if spec.contrast:
            x = self._raw_space(x, lambda images: adjust_contrast(images, spec.contrast, generator))
        if spec.cutout:
            x = cutout(x, spec.cutout, generator)
        if spec.mixup:
            mixed, targets_a, targets_b, lam = mixup(x, targets, spec.mixup, generator)
            return AugmentedBatch(mixed, targets_a, targets_b, lam)
        return AugmentedBatch(x, targets)

    def state_dict(self) -> dict[str, Any]:
        """The generator's state, for a checkpoint: a resumed run continues the same augmentations."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def build_augmenter(spec: AugmentSpec | None, info: DataInfo, *, seed: int) -> Augmenter | None:
    """An `Augmenter` when `spec` turns anything on, else None; operations that do not fit the data
    (image operations on non-images, mixup on token ids or outside classification/regression) are a
    `WorkloadError` on `data.augment`."""
    if spec is None:
        return None
    active = [name for name, value in spec.model_dump().items() if value]
    if not active:
        return None
    image_ops = [name for name in active if name in IMAGE_OPERATIONS]
    if image_ops and info.input_kind != "image":
        verb = "apply" if len(image_ops) > 1 else "applies"
        raise WorkloadError(
            f"{', '.join(image_ops)} {verb} to images, but the data gives {info.input_kind} inputs",
            field=f"data.augment.{image_ops[0]}",
        )
    if spec.mixup:
        if info.input_kind == "tokens":
            raise WorkloadError("mixup blends inputs and cannot blend token ids", field="data.augment.mixup")
        if info.task not in ("classification", "regression"):
            raise WorkloadError(
                f"mixup applies to classification and regression, not {info.task}", field="data.augment.mixup"
            )
    if spec.cutout:
        side = min(info.input_shape[-2:])
        if spec.cutout > side:
            raise WorkloadError(
                f"cutout {spec.cutout} is larger than the images ({side} pixels)", field="data.augment.cutout"
            )
    return Augmenter(spec, info, seed=seed)


def _bernoulli(count: int, p: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(count, generator=generator) < p).to(device)


def _uniform_factors(
    count: int, amount: float, generator: torch.Generator, like: torch.Tensor
) -> torch.Tensor:
    factors = 1.0 + (torch.rand(count, generator=generator) * 2 - 1) * amount
    return factors.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1)
