"""The built-in data sets: scikit-learn's bundled sets (offline) and the generated ones."""

from __future__ import annotations

from typing import Any

import numpy as np

from dljobs.spec.data import DataSpec
from dljobs.workloads.data import synthetic
from dljobs.workloads.data.raw import RawData

# Size of a generated set when data.samples is not set.
DEFAULT_SAMPLES = {"shapes": 5000, "sentiment": 5000, "waves": 3000}
# Generated content depends on the set's size and this seed, never on the job's seed: every job that
# names the same set trains on the same examples (the job's seed picks the split).
GENERATION_SEED = 20240917


def load_builtin(name: str, data: DataSpec) -> RawData:
    identity: dict[str, Any] = {"source": data.source}
    if name in ("digits", "breast_cancer", "wine"):
        return _sklearn(name, identity)
    samples = data.samples or DEFAULT_SAMPLES[name]
    identity.update(samples=samples, generation_seed=GENERATION_SEED)
    if name == "shapes":
        images, labels = synthetic.generate_shapes(samples, GENERATION_SEED)
        return RawData(
            input_kind="image",
            identity=identity,
            inputs=images,
            labels=labels,
            class_names=list(synthetic.SHAPE_CLASSES),
        )
    if name == "sentiment":
        identity.update(vocab_size=data.vocab_size, max_length=data.max_length)
        tokens, labels = synthetic.generate_sentiment(
            samples, GENERATION_SEED, vocab_size=data.vocab_size, max_length=data.max_length
        )
        vocabulary, _ = synthetic.sentiment_vocabulary(data.vocab_size)
        return RawData(
            input_kind="tokens",
            identity=identity,
            inputs=tokens,
            labels=labels,
            class_names=list(synthetic.SENTIMENT_CLASSES),
            vocabulary=vocabulary,
        )
    if name == "waves":
        identity.update(max_length=data.max_length)
        series, labels = synthetic.generate_waves(samples, GENERATION_SEED, length=data.max_length)
        return RawData(
            input_kind="sequence",
            identity=identity,
            inputs=series,
            labels=labels,
            class_names=list(synthetic.WAVE_CLASSES),
        )
    raise KeyError(name)  # the spec admits only names from BUILTIN_DATASETS


def _sklearn(name: str, identity: dict[str, Any]) -> RawData:
    from sklearn import datasets

    loader = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
    }[name]
    bunch = loader()
    labels = np.asarray(bunch.target, dtype=np.int64)
    if name == "digits":  # 8x8 grey images (values 0..16), so a CNN can take them
        return RawData(
            input_kind="image",
            identity=identity,
            inputs=bunch.images[:, None].astype(np.float32),
            labels=labels,
            class_names=[str(n) for n in bunch.target_names],
        )
    return RawData(
        input_kind="tabular",
        identity=identity,
        inputs=bunch.data.astype(np.float32),
        labels=labels,
        class_names=[str(n) for n in bunch.target_names],
        feature_names=list(bunch.feature_names),
    )
