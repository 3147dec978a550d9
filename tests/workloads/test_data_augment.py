"""Batch augmentations: each changes inputs as it should, keeps shapes, and follows its seed."""

from __future__ import annotations

import pytest
import torch

from dljobs.spec.data import AugmentSpec
from dljobs.workloads.data.augment import (
    AugmentedBatch,
    adjust_brightness,
    adjust_contrast,
    build_augmenter,
    cutout,
    hflip,
    mixup,
    random_crop,
    rotate,
    vflip,
)
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError

IMAGES = DataInfo(
    task="classification", input_kind="image", input_shape=(3, 16, 16), input_dtype="float32", num_classes=4
)


def _images(batch: int = 8, side: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(seed)) + 0.1


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_flips_twice_are_the_identity_and_flip_some_images():
    images = _images()
    assert torch.equal(hflip(hflip(images, _gen(), p=1.0), _gen(), p=1.0), images)
    assert torch.equal(hflip(images, _gen(), p=1.0), images.flip(-1))
    assert torch.equal(vflip(images, _gen(), p=1.0), images.flip(-2))
    flipped = hflip(images, _gen(1), p=0.5)
    same = [torch.equal(a, b) for a, b in zip(flipped, images, strict=True)]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, images, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and any(same) and any(mirrored)


def _shifted(image: torch.Tensor, dy: int, dx: int, padding: int) -> torch.Tensor:
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    height, width = image.shape[-2:]
    return padded[..., padding + dy : padding + dy + height, padding + dx : padding + dx + width]


def test_random_crop_shifts_each_image_within_the_padding():
    images = _images(12)
    cropped = random_crop(images, 3, _gen())
    assert cropped.shape == images.shape
    assert torch.equal(random_crop(images, 0, _gen()), images)
    offsets = []
    for image, out in zip(images, cropped, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-3, 4)
            for dx in range(-3, 4)
            if torch.equal(out, _shifted(image, dy, dx, 3))
        ]
        assert len(matches) == 1  # exactly one shift of the zero-padded image
        offsets.append(matches[0])
    assert len(set(offsets)) > 1  # each image gets its own offset


def test_rotation_keeps_shape_and_the_centre():
    images = torch.zeros(4, 1, 17, 17)
    images[:, :, 6:11, 6:11] = 1.0  # a centred square
    rotated = rotate(images, 15.0, _gen())
    assert rotated.shape == images.shape
    assert torch.allclose(rotated[:, :, 8, 8], torch.ones(4, 1))
    assert not torch.allclose(rotated, images)
    assert torch.equal(rotate(images, 0.0, _gen()), images)


def test_brightness_and_contrast():
    images = _images()
    brighter = adjust_brightness(images, 0.3, _gen())
    ratios = (brighter / images).flatten(1)
    assert torch.allclose(ratios, ratios[:, :1].expand_as(ratios), atol=1e-5)  # one factor per image
    assert ((ratios[:, 0] >= 0.7 - 1e-6) & (ratios[:, 0] <= 1.3 + 1e-6)).all()
    contrasted = adjust_contrast(images, 0.5, _gen())
    assert torch.allclose(contrasted.mean(dim=(2, 3)), images.mean(dim=(2, 3)), atol=1e-5)  # means kept
    assert not torch.allclose(contrasted, images)


def test_cutout_zeroes_one_square():
    images = torch.ones(16, 3, 20, 20)
    out = cutout(images, 6, _gen())
    assert out.shape == images.shape
    for image in out:
        zeros = (image == 0).all(0)
        rows, cols = zeros.any(1).nonzero().flatten(), zeros.any(0).nonzero().flatten()
        height, width = len(rows), len(cols)
        assert 3 <= height <= 6 and 3 <= width <= 6
        assert int(zeros.sum()) == height * width  # a rectangle (a square clipped at the border)
        assert (image[:, ~zeros] == 1).all()


def test_mixup_blends_inputs_and_returns_both_targets():
    inputs = torch.randn(10, 5, generator=_gen(3))
    targets = torch.arange(10)
    mixed, first, second, lam = mixup(inputs, targets, 0.4, _gen())
    assert 0.0 <= lam <= 1.0 and mixed.shape == inputs.shape
    assert torch.equal(first, targets) and sorted(second.tolist()) == list(range(10))
    assert torch.allclose(mixed, lam * inputs + (1 - lam) * inputs[second])
    batch = AugmentedBatch(mixed, first, second, lam)
    outputs = torch.randn(10, 10)
    loss = torch.nn.functional.cross_entropy
    expected = lam * loss(outputs, first) + (1 - lam) * loss(outputs, second)
    assert torch.allclose(batch.loss(loss, outputs), expected)
    assert torch.allclose(AugmentedBatch(inputs, targets).loss(loss, outputs), loss(outputs, targets))


def test_the_augmenter_follows_its_spec_and_seed():
    spec = AugmentSpec(
        hflip=True, crop_padding=2, rotation=10, brightness=0.2, contrast=0.2, cutout=4, mixup=0.2
    )
    images, targets = _images(), torch.arange(8) % 4
    first = build_augmenter(spec, IMAGES, seed=5)(images, targets)
    again = build_augmenter(spec, IMAGES, seed=5)(images, targets)
    other = build_augmenter(spec, IMAGES, seed=6)(images, targets)
    assert first.inputs.shape == images.shape and first.mixed_targets is not None
    assert torch.equal(first.inputs, again.inputs) and first.lam == again.lam
    assert not torch.equal(first.inputs, other.inputs)
    # a checkpointed generator state continues the same sequence
    augmenter = build_augmenter(spec, IMAGES, seed=5)
    state = augmenter.state_dict()
    step = augmenter(images, targets).inputs
    augmenter.load_state_dict(state)
    assert torch.equal(augmenter(images, targets).inputs, step)


def test_brightness_acts_on_raw_pixels_when_inputs_are_normalized():
    info = DataInfo(
        task="classification",
        input_kind="image",
        input_shape=(1, 4, 4),
        input_dtype="float32",
        preprocessing={
            "normalization": {"shift": [0.5], "scale": [0.25], "per": "channel", "method": "standard"}
        },
    )
    raw = torch.full((2, 1, 4, 4), 0.8)
    normalized = (raw - 0.5) / 0.25
    out = build_augmenter(AugmentSpec(brightness=0.5), info, seed=0)(normalized, torch.zeros(2)).inputs
    factors = (out * 0.25 + 0.5) / raw  # back in raw space: a pure scaling of the pixels
    assert torch.allclose(factors, factors[:, :, :1, :1].expand_as(factors), atol=1e-5)
    assert not torch.allclose(factors, torch.ones_like(factors))


def test_augmentations_that_do_not_fit_the_data_are_refused():
    tabular = DataInfo(task="classification", input_kind="tabular", input_shape=(5,), input_dtype="float32")
    tokens = DataInfo(task="classification", input_kind="tokens", input_shape=(8,), input_dtype="int64")
    recon = DataInfo(task="reconstruction", input_kind="image", input_shape=(3, 8, 8), input_dtype="float32")
    for spec, info, field in [
        (AugmentSpec(hflip=True), tabular, "data.augment.hflip"),
        (AugmentSpec(mixup=0.2), tokens, "data.augment.mixup"),
        (AugmentSpec(mixup=0.2), recon, "data.augment.mixup"),
        (AugmentSpec(cutout=40), IMAGES, "data.augment.cutout"),
    ]:
        with pytest.raises(WorkloadError) as caught:
            build_augmenter(spec, info, seed=0)
        assert caught.value.field == field
    assert build_augmenter(None, IMAGES, seed=0) is None
    assert build_augmenter(AugmentSpec(), IMAGES, seed=0) is None
    assert build_augmenter(AugmentSpec(mixup=0.3), tabular, seed=0) is not None
