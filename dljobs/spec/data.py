"""The `data:` section: where examples come from, how they are split, augmented and streamed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from dljobs.spec.base import StrictModel
from dljobs.spec.errors import shown
from dljobs.spec.suggest import did_you_mean

# Data sets that exist offline: scikit-learn's bundled sets and generated sets with learnable structure.
BUILTIN_DATASETS = {
    "digits": "8x8 grey images of handwritten digits, 10 classes (scikit-learn)",
    "breast_cancer": "30 tabular features, benign or malignant (scikit-learn)",
    "wine": "13 tabular features, 3 cultivars (scikit-learn)",
    "shapes": "CIFAR-shaped 3x32x32 colour images of 10 kinds of shape and texture (generated)",
    "sentiment": "token sequences whose label follows from the words they contain (generated)",
    "waves": "multichannel time series of noisy waveforms, one class per waveform family (generated)",
}
SCHEMES = ("builtin://", "file://", "s3://")


class AugmentSpec(StrictModel):
    """Augmentations in plain torch, applied to training batches only."""

    hflip: bool = False
    vflip: bool = False
    crop_padding: int = Field(default=0, ge=0, le=64)
    rotation: float = Field(default=0.0, ge=0.0, le=180.0, description="maximum rotation in degrees")
    brightness: float = Field(default=0.0, ge=0.0, le=1.0)
    contrast: float = Field(default=0.0, ge=0.0, le=1.0)
    cutout: int = Field(default=0, ge=0, le=256, description="side of the square erased, in pixels")
    mixup: float = Field(default=0.0, ge=0.0, le=10.0, description="mixup's Beta(alpha, alpha); 0 is off")


class DataSpec(StrictModel):
    source: str = Field(description="builtin://NAME, file://PATH or s3://BUCKET/KEY")
    format: Literal["auto", "csv", "parquet", "npz", "images", "jsonl"] = "auto"
    label_column: str = Field(default="label", min_length=1, max_length=256)
    text_column: str = Field(default="text", min_length=1, max_length=256)
    validation_split: float = Field(default=0.2, ge=0.0, le=0.9)
    test_split: float = Field(default=0.1, ge=0.0, le=0.9)
    samples: int | None = Field(default=None, ge=16, le=100_000_000, description="size of a generated set")
    max_length: int = Field(default=64, ge=1, le=65536, description="tokens kept per text example")
    vocab_size: int = Field(default=10_000, ge=16, le=1_000_000)
    image_size: int | None = Field(
        default=None, ge=4, le=4096, description="resize image folders to this side"
    )
    normalize: bool = True
    shuffle: bool = True
    streaming: bool = Field(default=False, description="stream through Ray Data instead of loading whole")
    augment: AugmentSpec | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not value.startswith(SCHEMES):
            raise ValueError(f"{shown(value)} must start with one of {', '.join(SCHEMES)}")
        rest = value.split("://", 1)[1]
        if not rest:
            raise ValueError(f"{shown(value)} names no data set")
        if any(ord(c) < 32 for c in value):
            raise ValueError("must not contain control characters")
        if value.startswith("builtin://") and rest not in BUILTIN_DATASETS:
            raise ValueError(
                f"unknown built-in data set {shown(rest)}{did_you_mean(rest, BUILTIN_DATASETS)}; "
                f"built-in data sets: {', '.join(BUILTIN_DATASETS)}"
            )
        if value.startswith("s3://") and "/" not in rest.strip("/"):
            raise ValueError(f"{shown(value)} names a bucket but no key: use s3://BUCKET/KEY")
        return value

    @model_validator(mode="after")
    def _splits(self) -> DataSpec:
        if self.validation_split + self.test_split >= 0.95:
            blamed = "test_split" if "test_split" in self.model_fields_set else "validation_split"
            raise ValueError(
                f"{blamed}: validation_split + test_split is {self.validation_split + self.test_split:g}; "
                "keep it below 0.95 to leave data to train on"
            )
        return self

    @property
    def builtin_name(self) -> str | None:
        return self.source.removeprefix("builtin://") if self.source.startswith("builtin://") else None
