"""Short real training runs on CPU: the built-in models learn the built-in data sets."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from dljobs.workloads.data import load_data
from dljobs.workloads.data.base import PreparedData
from dljobs.workloads.models import build_model
from tests.workloads import job_spec


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread: steadier timing on a shared machine, and the same numbers on every run."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _train(
    spec, *, epochs: int, lr: float = 3e-3, batch_size: int = 32
) -> tuple[torch.nn.Module, PreparedData]:
    torch.manual_seed(0)
    data = load_data(spec, seed=0)
    model = build_model(spec.workload, data.info)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(0)
    loss_fn = F.cross_entropy if data.info.task == "classification" else F.mse_loss
    for _ in range(epochs):
        model.train()
        for x, y in DataLoader(data.train, batch_size=batch_size, shuffle=True, generator=order):
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
    return model.eval(), data


def _accuracy(model: torch.nn.Module, data: PreparedData) -> float:
    x, y = data.val[:]
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_mlp_learns_digits():
    model, data = _train(job_spec("builtin://digits", "mlp"), epochs=6)
    assert _accuracy(model, data) > 0.9


def test_cnn_learns_shapes_and_beats_an_mlp():
    shapes = {"samples": 1000}
    cnn, data = _train(
        job_spec("builtin://shapes", "cnn", {"channels": [8, 16], "hidden": 32}, **shapes), epochs=3
    )
    mlp, _ = _train(job_spec("builtin://shapes", "mlp", {"hidden": [128]}, **shapes), epochs=3)
    cnn_accuracy, mlp_accuracy = _accuracy(cnn, data), _accuracy(mlp, data)
    assert cnn_accuracy > 0.3  # 10 classes: chance is 0.1
    assert cnn_accuracy > mlp_accuracy + 0.05


SENTIMENT = {"samples": 1000, "vocab_size": 40, "max_length": 12}


def test_lstm_learns_sentiment():
    spec = job_spec(
        "builtin://sentiment", "lstm", {"num_layers": 1, "hidden_size": 32, "embedding_dim": 32}, **SENTIMENT
    )
    model, data = _train(spec, epochs=4)
    assert _accuracy(model, data) > 0.75  # two classes: chance is 0.5


def test_transformer_learns_sentiment():
    params = {
        "d_model": 32,
        "nhead": 4,
        "num_layers": 1,
        "dim_feedforward": 64,
        "max_length": 16,
        "dropout": 0.0,
    }
    model, data = _train(job_spec("builtin://sentiment", "transformer", params, **SENTIMENT), epochs=8)
    assert _accuracy(model, data) > 0.65


def test_gru_learns_waves():
    spec = job_spec(
        "builtin://waves",
        "gru",
        {"num_layers": 1, "hidden_size": 32, "embedding_dim": 16},
        samples=800,
        max_length=32,
    )
    model, data = _train(spec, epochs=4)
    assert _accuracy(model, data) > 0.4  # five classes: chance is 0.2


def test_mlp_learns_a_regression_from_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = 2 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=400)
    lines = ["a,b,c,target"] + [f"{a:.5f},{b:.5f},{c:.5f},{t:.5f}" for (a, b, c), t in zip(x, y, strict=True)]
    (tmp_path / "reg.csv").write_text("\n".join(lines) + "\n")
    model, data = _train(
        job_spec(f"file://{tmp_path / 'reg.csv'}", "mlp", {"dropout": 0.0}, label_column="target"), epochs=15
    )
    features, target = data.val[:]
    with torch.no_grad():
        residual = float(F.mse_loss(model(features), target))
    assert residual < 0.1 * float(target.var())  # R^2 above 0.9


def test_autoencoder_learns_to_reconstruct_digits():
    spec = job_spec("builtin://digits", "autoencoder", {"hidden": [64], "latent_dim": 16})
    untrained = build_model(spec.workload, load_data(spec, seed=0).info).eval()
    model, data = _train(spec, epochs=10)
    x, _ = data.val[:]
    with torch.no_grad():
        assert float(F.mse_loss(model(x), x)) < 0.5 * float(F.mse_loss(untrained(x), x))
