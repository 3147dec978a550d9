"""Every built-in model builds for the data it supports, trains (forward and backward) and exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dljobs.spec.job import WorkloadSpec
from dljobs.workloads.data import load_data
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.models import build_model, example_input, export_torchscript
from dljobs.workloads.models.dense import GAN
from dljobs.workloads.models.export import serving_module
from tests.workloads import job_spec

SHAPES = {"tabular": (7,), "image": (3, 12, 10), "tokens": (9,), "sequence": (11, 2)}


def _info(kind: str, task: str = "classification", normalized: bool = True) -> DataInfo:
    shape = SHAPES[kind]
    features = {"tabular": shape[0], "image": shape[0], "sequence": shape[-1]}.get(kind)
    preprocessing = {}
    if normalized and features:
        per = "feature" if kind == "tabular" else "channel"
        preprocessing["normalization"] = {
            "method": "standard",
            "per": per,
            "shift": [0.5] * features,
            "scale": [2.0] * features,
        }
    return DataInfo(
        task=task,  # type: ignore[arg-type]
        input_kind=kind,  # type: ignore[arg-type]
        input_shape=shape,
        input_dtype="int64" if kind == "tokens" else "float32",
        num_classes=4 if task == "classification" else None,
        target_dim=2 if task == "regression" else None,
        vocab_size=30 if kind == "tokens" else None,
        preprocessing=preprocessing,
    )


def _workload(model: str, **params) -> WorkloadSpec:
    return WorkloadSpec.model_validate({"model": model, "params": params})


MODEL_CASES = [
    ("mlp", {}, "tabular"),
    ("mlp", {"batch_norm": True, "activation": "gelu"}, "image"),
    ("mlp", {"hidden": []}, "sequence"),
    ("cnn", {}, "image"),
    ("cnn", {"channels": [8, 8, 8, 8], "pool": "avg"}, "image"),
    ("cnn", {"channels": [8]}, "sequence"),
    ("lstm", {}, "tokens"),
    ("lstm", {"bidirectional": True, "num_layers": 1}, "sequence"),
    ("gru", {"bidirectional": True}, "tokens"),
    ("gru", {}, "sequence"),
    ("transformer", {}, "tokens"),
    ("transformer", {"pooling": "cls", "positional": "learned"}, "tokens"),
    ("transformer", {"d_model": 16, "nhead": 2}, "sequence"),
]


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize(("model", "params", "kind"), MODEL_CASES)
def test_predictive_models_train_and_export(model, params, kind, task):
    info = _info(kind, task)
    net = build_model(_workload(model, **params), info)
    assert isinstance(net.head, nn.Linear)
    width = 4 if task == "classification" else 2
    assert net.head.out_features == width
    x = example_input(info, batch=3)
    out = net(x)
    assert out.shape == (3, width)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    _check_export(net, info)


def test_autoencoder_reconstructs_each_kind():
    for kind in ("tabular", "image", "sequence"):
        info = _info(kind, "reconstruction")
        net = build_model(_workload("autoencoder", hidden=[16, 8], latent_dim=4), info)
        x = example_input(info, batch=3)
        out = net(x)
        assert out.shape == x.shape and net.encode(x).shape == (3, 4)
        nn.functional.mse_loss(out, x).backward()
        assert net.head.out_features == int(np.prod(SHAPES[kind]))
        _check_export(net, info)


def test_gan_holds_a_generator_and_a_discriminator():
    info = _info("image", "generation")
    gan = build_model(_workload("gan", latent_dim=8), info)
    assert isinstance(gan, GAN) and gan.head is gan.generator.head
    z = gan.sample_latent(4, torch.Generator().manual_seed(0))
    fake = gan(z)
    assert fake.shape == (4, *SHAPES["image"]) and float(fake.detach().abs().max()) <= 1.0
    logits = gan.discriminator(fake)
    assert logits.shape == (4, 1)
    nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(4, 1)).backward()
    assert gan.generator.head.weight.grad is not None
    assert example_input(info, batch=5, model=gan).shape == (5, 8)
    traced = export_torchscript(gan, info)
    z = torch.randn(6, 8)
    # the exported generator gives samples in the raw data's space
    assert torch.allclose(traced(z), serving_module(gan, info)(z), atol=1e-5)
    assert torch.allclose(traced(z), gan.eval().generator(z) * 2.0 + 0.5, atol=1e-5)


def _check_export(net: nn.Module, info: DataInfo) -> None:
    net.train()
    traced = export_torchscript(net, info)
    assert isinstance(traced, torch.jit.ScriptModule)
    assert net.training  # export leaves the model as it was
    net.eval()
    for seed in (1, 2):  # an input other than the traced one, too
        x = _raw_input(info, seed)
        with torch.no_grad():
            expected = serving_module(net, info)(x)
            model_space = net(_normalize(x, info)) if info.input_kind != "tokens" else net(x)
        assert torch.allclose(traced(x), expected, atol=1e-4)
        if info.task in ("reconstruction", "generation"):
            model_space = model_space * 2.0 + 0.5
        assert torch.allclose(traced(x), model_space, atol=1e-4)


def _raw_input(info: DataInfo, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if info.input_kind == "tokens":
        ids = torch.randint(1, info.vocab_size, (4, *info.input_shape), generator=generator)
        ids[0, seed + 2 :] = 0
        ids[1] = 0  # an empty text
        return ids
    return torch.rand((4, *info.input_shape), generator=generator) * 3


def _normalize(x: torch.Tensor, info: DataInfo) -> torch.Tensor:
    return (x - 0.5) / 2.0 if info.preprocessing.get("normalization") else x


def test_exported_models_take_raw_inputs():
    data = load_data(job_spec("builtin://breast_cancer"), seed=0)
    net = build_model(_workload("mlp"), data.info).eval()
    from sklearn.datasets import load_breast_cancer

    raw = torch.tensor(load_breast_cancer().data[:5], dtype=torch.float32)
    normalization = data.info.preprocessing["normalization"]
    normalized = (raw - torch.tensor(normalization["shift"])) / torch.tensor(normalization["scale"])
    traced = export_torchscript(net, data.info)
    assert torch.allclose(traced(raw), net(normalized), atol=1e-4)


@pytest.mark.parametrize(
    ("model", "kind", "words"),
    [
        ("cnn", "tabular", "takes images or time series"),
        ("mlp", "tokens", "token sequences"),
        ("lstm", "image", "takes token sequences (text) or time series"),
        ("autoencoder", "tokens", "token sequences"),
    ],
)
def test_a_model_refuses_data_it_cannot_take(model, kind, words):
    with pytest.raises(WorkloadError) as caught:
        build_model(_workload(model), _info(kind))
    assert caught.value.field == "workload.model" and words in str(caught.value)


def test_transformer_max_length_must_cover_the_sequences():
    with pytest.raises(WorkloadError) as caught:
        build_model(_workload("transformer", max_length=9, pooling="cls"), _info("tokens"))
    assert caught.value.field == "workload.params.max_length"
    assert build_model(_workload("transformer", max_length=9), _info("tokens")) is not None


def test_cnn_adapts_to_tiny_and_large_inputs():
    tiny = DataInfo(
        task="classification", input_kind="image", input_shape=(1, 3, 3), input_dtype="float32", num_classes=2
    )
    net = build_model(_workload("cnn", channels=[4, 4, 4, 4]), tiny)
    assert net(torch.randn(2, 1, 3, 3)).shape == (2, 2)
    large = DataInfo(
        task="classification",
        input_kind="image",
        input_shape=(3, 96, 80),
        input_dtype="float32",
        num_classes=2,
    )
    net = build_model(_workload("cnn", channels=[4]), large)
    assert net.hidden[1].in_features == 4 * 8 * 8  # pooled down to 8x8 before the dense layer
    assert net(torch.randn(2, 3, 96, 80)).shape == (2, 2)
