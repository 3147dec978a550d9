"""Transfer learning: earlier weights loaded, the head replaced for new classes, frozen layers kept fixed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dljobs.spec.job import WorkloadSpec
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.models import build_model, freeze, load_pretrained, replace_head


def _info(classes: int = 3, shape: tuple[int, ...] = (3, 8, 8)) -> DataInfo:
    return DataInfo(
        task="classification",
        input_kind="image",
        input_shape=shape,
        input_dtype="float32",
        num_classes=classes,
    )


def _model(model: str = "cnn", classes: int = 3, shape: tuple[int, ...] = (3, 8, 8), **params) -> nn.Module:
    torch.manual_seed(classes + len(params) + len(shape))
    return build_model(WorkloadSpec.model_validate({"model": model, "params": params}), _info(classes, shape))


def _equal_outside_head(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith("head."))


def test_same_shapes_load_everything():
    source, target = _model(), _model()
    with torch.no_grad():
        for p in target.parameters():
            nn.init.normal_(p)
    result = load_pretrained(target, source.state_dict(), new_num_classes=3)
    assert not result.head_replaced and "head.weight" in result.loaded
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(source.eval()(x), target.eval()(x))


def test_new_classes_get_a_new_head_and_keep_the_rest():
    source = _model(classes=10)
    target = _model(classes=10)  # built for the old data, as when the class count is only known later
    result = load_pretrained(target, source.state_dict(), new_num_classes=4)
    assert result.head_replaced and target.head.out_features == 4
    assert "head.weight" not in result.loaded
    assert _equal_outside_head(source, target)
    assert target(torch.randn(2, 3, 8, 8)).shape == (2, 4)

    # built for the new data already: the head that does not fit is left untrained
    fresh = _model(classes=4)
    head_before = fresh.head.weight.clone()
    result = load_pretrained(fresh, source.state_dict())
    assert result.head_replaced and torch.equal(fresh.head.weight, head_before)
    assert _equal_outside_head(source, fresh)


def test_wrapper_prefixes_are_ignored():
    source = _model()
    wrapped = {f"module.{k}": v for k, v in source.state_dict().items()}
    target = _model()
    load_pretrained(target, wrapped)
    assert _equal_outside_head(source, target)


def test_a_layer_of_another_shape_is_named():
    source = _model(shape=(1, 8, 8))  # grey images
    target = _model(shape=(3, 8, 8))  # colour images: the first convolution differs
    with pytest.raises(WorkloadError) as caught:
        load_pretrained(target, source.state_dict(), new_num_classes=3)
    assert caught.value.field == "workload.init_from"
    assert "features.0.0" in str(caught.value) and "(32, 1, 3, 3)" in str(caught.value)


def test_weights_of_another_architecture_are_refused():
    source = _model(channels=[8, 8, 8])
    target = _model(channels=[8, 8])
    with pytest.raises(WorkloadError) as caught:
        load_pretrained(target, source.state_dict())
    assert caught.value.field == "workload.init_from" and "features.2" in str(caught.value)
    with pytest.raises(WorkloadError) as caught:
        load_pretrained(source, target.state_dict())
    assert caught.value.field == "workload.init_from" and "features.2" in str(caught.value)


def test_frozen_parameters_get_no_gradient_and_do_not_move():
    model = _model()
    frozen = freeze(model, ["features"])
    assert frozen and all(name.startswith("features.") for name in frozen)
    before = {name: p.clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    optimizer.step()
    for name, parameter in model.named_parameters():
        if name in frozen:
            assert parameter.grad is None and torch.equal(parameter, before[name])
        else:
            assert parameter.grad is not None and not torch.equal(parameter, before[name])


def test_freeze_matches_dotted_prefixes_only():
    model = _model()
    assert freeze(model, ["features.0"]) == [
        "features.0.0.weight",
        "features.0.0.bias",
        "features.0.1.weight",
        "features.0.1.bias",
    ]
    assert model.features[1][0].weight.requires_grad


def test_freezing_an_unknown_layer_lists_the_layers():
    with pytest.raises(WorkloadError) as caught:
        freeze(_model(), ["encoder"])
    assert caught.value.field == "workload.freeze"
    assert "features, hidden, head" in str(caught.value)


def test_every_model_has_a_replaceable_head():
    tokens = DataInfo(
        task="classification",
        input_kind="tokens",
        input_shape=(6,),
        input_dtype="int64",
        num_classes=3,
        vocab_size=20,
    )
    for name, info in [
        ("mlp", _info()),
        ("cnn", _info()),
        ("lstm", tokens),
        ("gru", tokens),
        ("transformer", tokens),
    ]:
        model = build_model(WorkloadSpec.model_validate({"model": name}), info)
        replace_head(model, 7)
        x = torch.randint(1, 20, (2, 6)) if info.input_kind == "tokens" else torch.randn(2, 3, 8, 8)
        assert model(x).shape == (2, 7), name
    gan = build_model(
        WorkloadSpec.model_validate({"model": "gan"}),
        DataInfo(task="generation", input_kind="tabular", input_shape=(5,), input_dtype="float32"),
    )
    source = build_model(
        WorkloadSpec.model_validate({"model": "gan"}),
        DataInfo(task="generation", input_kind="tabular", input_shape=(5,), input_dtype="float32"),
    )
    result = load_pretrained(gan, source.state_dict())
    assert not result.head_replaced and torch.equal(gan.head.weight, source.generator.head.weight)
