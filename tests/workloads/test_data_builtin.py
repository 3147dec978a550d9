"""The built-in data sets: shapes, determinism, splits, normalization, summaries, learnable structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dljobs.workloads.data import load_data
from dljobs.workloads.data.splits import split_indices
from dljobs.workloads.data.synthetic import (
    SHAPE_CLASSES,
    WAVE_CLASSES,
    generate_sentiment,
    generate_shapes,
    generate_waves,
    sentiment_vocabulary,
)
from tests.workloads import job_spec

BUILTIN_CASES = [
    # name, model, extra data fields, input kind, example shape, classes
    ("digits", "mlp", {}, "image", (1, 8, 8), 10),
    ("breast_cancer", "mlp", {}, "tabular", (30,), 2),
    ("wine", "mlp", {}, "tabular", (13,), 3),
    ("shapes", "cnn", {"samples": 200}, "image", (3, 32, 32), 10),
    ("sentiment", "lstm", {"samples": 200, "vocab_size": 64, "max_length": 24}, "tokens", (24,), 2),
    ("waves", "gru", {"samples": 200, "max_length": 32}, "sequence", (32, 3), 5),
]


@pytest.mark.parametrize(("name", "model", "fields", "kind", "shape", "classes"), BUILTIN_CASES)
def test_builtin_sets_load_with_the_documented_shapes(name, model, fields, kind, shape, classes):
    data = load_data(job_spec(f"builtin://{name}", model, **fields), seed=0)
    info = data.info
    assert (info.task, info.input_kind, info.input_shape, info.num_classes) == (
        "classification",
        kind,
        shape,
        classes,
    )
    assert len(info.class_names) == classes
    assert info.input_dtype == ("int64" if kind == "tokens" else "float32")
    assert len(info.fingerprint) == 64 and int(info.fingerprint, 16) >= 0
    assert (info.num_train, info.num_val, info.num_test) == (len(data.train), len(data.val), len(data.test))
    total = info.num_train + info.num_val + info.num_test
    assert info.num_val == pytest.approx(0.2 * total, abs=classes) and info.num_test == pytest.approx(
        0.1 * total, abs=classes
    )
    for split in (data.train, data.val, data.test):
        x, y = split[:]
        assert tuple(x.shape[1:]) == shape and x.dtype == (torch.int64 if kind == "tokens" else torch.float32)
        assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) < classes
    if kind == "tokens":
        assert info.vocab_size == 64 and len(info.preprocessing["vocabulary"]) == 64
        x, _ = data.train[:]
        assert int(x.max()) < 64 and (x == 0).any()  # padded with 0
    else:
        assert info.preprocessing["normalization"]["method"] == "standard"


def test_generated_set_size_defaults_and_follows_samples():
    assert load_data(job_spec("builtin://waves", "gru"), seed=0).info.num_train == 2100  # 70% of 3000
    info = load_data(job_spec("builtin://waves", "gru", samples=100), seed=0).info
    assert info.num_train + info.num_val + info.num_test == 100


def test_loading_is_deterministic_for_a_seed():
    spec = job_spec("builtin://shapes", "cnn", samples=120)
    first, again, other = load_data(spec, seed=7), load_data(spec, seed=7), load_data(spec, seed=8)
    for a, b in zip(first.train[:], again.train[:], strict=True):
        assert torch.equal(a, b)
    assert first.info == again.info
    # Another seed splits the same data differently: same fingerprint, other training examples.
    assert other.info.fingerprint == first.info.fingerprint
    assert not torch.equal(first.train[:][0], other.train[:][0])


def test_generators_are_pure_functions_of_size_and_seed():
    for generate in (
        lambda seed: generate_shapes(30, seed),
        lambda seed: generate_sentiment(30, seed, vocab_size=50, max_length=12),
        lambda seed: generate_waves(30, seed, length=16),
    ):
        (x1, y1), (x2, y2), (x3, _) = generate(1), generate(1), generate(2)
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
        assert not np.array_equal(x1, x3)


def test_fingerprint_changes_with_content_and_identity():
    base = load_data(job_spec("builtin://sentiment", "lstm", samples=64, vocab_size=32, max_length=8), seed=0)
    more = load_data(job_spec("builtin://sentiment", "lstm", samples=80, vocab_size=32, max_length=8), seed=0)
    longer = load_data(
        job_spec("builtin://sentiment", "lstm", samples=64, vocab_size=32, max_length=9), seed=0
    )
    assert len({base.info.fingerprint, more.info.fingerprint, longer.info.fingerprint}) == 3


def test_classification_splits_are_stratified():
    data = load_data(job_spec("builtin://digits"), seed=3)
    shares = []
    for split in (data.train, data.val, data.test):
        _, y = split[:]
        shares.append(np.bincount(y.numpy(), minlength=10) / len(y))
    assert np.abs(shares[0] - shares[1]).max() < 0.02
    assert np.abs(shares[0] - shares[2]).max() < 0.03


def test_split_indices_keep_order_without_shuffle_and_leave_training_data():
    split = split_indices(10, validation=0.2, test=0.1, seed=0, shuffle=False)
    assert (
        split.train.tolist() == list(range(7)) and split.val.tolist() == [7, 8] and split.test.tolist() == [9]
    )
    tiny = split_indices(2, validation=0.5, test=0.4, seed=0, stratify=np.array([0, 1]))
    assert sorted(tiny.train.tolist()) == [0, 1]  # one example per class stays in training
    split = split_indices(50, validation=0.3, test=0.3, seed=1)
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(50))


def test_normalization_is_fitted_on_the_training_split_only():
    data = load_data(job_spec("builtin://breast_cancer"), seed=0)
    train, _ = data.train[:]
    val, _ = data.val[:]
    assert torch.allclose(train.mean(0), torch.zeros(30), atol=1e-4)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(30), atol=1e-3)
    assert val.mean(0).abs().max() > 1e-3  # the validation split did not take part
    normalization = data.info.preprocessing["normalization"]
    assert normalization["per"] == "feature" and len(normalization["shift"]) == 30

    images = load_data(job_spec("builtin://shapes", "cnn", samples=100), seed=0)
    assert len(images.info.preprocessing["normalization"]["shift"]) == 3  # per channel


def test_normalize_false_keeps_raw_values():
    data = load_data(job_spec("builtin://digits", normalize=False), seed=0)
    x, _ = data.train[:]
    assert "normalization" not in data.info.preprocessing
    assert float(x.min()) == 0.0 and float(x.max()) == 16.0


def test_feature_summary_is_small_and_per_channel_for_images():
    tabular = load_data(job_spec("builtin://breast_cancer"), seed=0).info.feature_summary
    assert tabular["num_features"] == 30 and len(tabular["features"]) == 30
    first = tabular["features"][0]
    assert first["name"] == "mean radius"
    assert first["bins"] == sorted(first["bins"]) and len(first["bins"]) == 11
    assert sum(first["fractions"]) == pytest.approx(1.0)
    # Statistics of raw training inputs: what a served request will look like.
    assert 10 < first["mean"] < 20

    images = load_data(job_spec("builtin://shapes", "cnn", samples=100), seed=0).info.feature_summary
    assert images["per"] == "channel" and [f["name"] for f in images["features"]] == [
        "channel_0",
        "channel_1",
        "channel_2",
    ]
    tokens = load_data(job_spec("builtin://sentiment", "lstm", samples=50, vocab_size=32), seed=0).info
    assert [f["name"] for f in tokens.feature_summary["features"]] == ["length", "unknown_fraction"]


def test_wide_tables_summarise_at_most_64_features(tmp_path):
    rng = np.random.default_rng(0)
    # every column the same pattern at a growing scale: variance grows with the column index
    x = rng.normal(size=(60, 1)).astype(np.float32) * np.linspace(0.1, 10, 100, dtype=np.float32)
    np.savez(tmp_path / "wide.npz", x=x, y=rng.integers(0, 2, 60))
    summary = load_data(job_spec(f"file://{tmp_path / 'wide.npz'}"), seed=0).info.feature_summary
    assert summary["num_features"] == 100 and len(summary["features"]) == 64
    # the 64 of highest variance: the last 64 columns, whose scale is largest
    assert [f["index"] for f in summary["features"]] == list(range(36, 100))


def test_autoencoder_reconstructs_and_gan_generates_inputs():
    recon = load_data(job_spec("builtin://digits", "autoencoder"), seed=0)
    x, target = recon.train[:]
    assert recon.info.task == "reconstruction" and recon.info.num_classes is None
    assert torch.equal(x, target)
    gen = load_data(job_spec("builtin://digits", "gan"), seed=0)
    x, _ = gen.train[:]
    assert gen.info.task == "generation" and gen.info.preprocessing["normalization"]["method"] == "minmax"
    assert float(x.min()) == pytest.approx(-1.0) and float(x.max()) == pytest.approx(1.0)


def test_sentiment_labels_follow_from_words_and_negations():
    tokens, labels = generate_sentiment(400, 5, vocab_size=200, max_length=30)
    _, groups = sentiment_vocabulary(200)
    positive, negative, negators = (set(groups[k]) for k in ("positive", "negative", "negator"))
    predicted = []
    for row in tokens:
        score = 0
        for before, token in zip([0, *row[:-1]], row, strict=True):
            sign = -1 if before in negators else 1
            score += sign * ((token in positive) - (token in negative))
        predicted.append(int(score > 0))
    assert np.array_equal(np.array(predicted), labels)
    # A bag of words without the negations gets many wrong: order matters.
    bag = [int(sum(t in positive for t in row) > sum(t in negative for t in row)) for row in tokens]
    assert np.mean(np.array(bag) == labels) < 0.95


def test_shapes_and_waves_are_balanced_and_bounded():
    images, labels = generate_shapes(200, 0)
    assert images.shape == (200, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert np.bincount(labels).tolist() == [20] * len(SHAPE_CLASSES)
    series, wave_labels = generate_waves(100, 0, length=40)
    assert series.shape == (100, 40, 3) and np.bincount(wave_labels).tolist() == [20] * len(WAVE_CLASSES)
