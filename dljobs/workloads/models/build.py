"""`build_model`: a workload's built-in model and params, fitted to the data it will train on."""

from __future__ import annotations

from torch import nn

from dljobs.spec.job import WorkloadSpec
from dljobs.spec.params import (
    BUILTIN_MODELS,
    AutoencoderParams,
    CNNParams,
    GANParams,
    MLPParams,
    RNNParams,
    TransformerParams,
)
from dljobs.workloads.data.base import DataInfo
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.models.conv import CNN
from dljobs.workloads.models.dense import GAN, MLP, Autoencoder
from dljobs.workloads.models.sequence import RecurrentNet, TransformerNet

# The kinds of input each model takes.
SUPPORTED_INPUTS: dict[str, tuple[str, ...]] = {
    "mlp": ("tabular", "image", "sequence"),
    "cnn": ("image", "sequence"),
    "lstm": ("tokens", "sequence"),
    "gru": ("tokens", "sequence"),
    "transformer": ("tokens", "sequence"),
    "autoencoder": ("tabular", "image", "sequence"),
    "gan": ("tabular", "image", "sequence"),
}
_INPUT_WORDS = {
    "tabular": "tabular features",
    "image": "images",
    "tokens": "token sequences (text)",
    "sequence": "time series",
}


def build_model(workload: WorkloadSpec, info: DataInfo) -> nn.Module:
    """The built-in model `workload.model` with `workload.params`, shaped for `info`'s inputs and task.

    Every model's final layer is `model.head` (for the GAN, the generator's output layer).
    """
    name = workload.model
    if name is None or name not in BUILTIN_MODELS:
        raise WorkloadError(f"'{name}' is not a built-in model", field="workload.model")
    supported = SUPPORTED_INPUTS[name]
    if info.input_kind not in supported:
        takes = " or ".join(_INPUT_WORDS[k] for k in supported)
        raise WorkloadError(
            f"model '{name}' takes {takes}, but the data gives {_INPUT_WORDS[info.input_kind]}",
            field="workload.model",
        )
    params = BUILTIN_MODELS[name].model_validate(workload.params)
    if name == "mlp":
        assert isinstance(params, MLPParams)
        return MLP(info, params)
    if name == "cnn":
        assert isinstance(params, CNNParams)
        return CNN(info, params)
    if name in ("lstm", "gru"):
        assert isinstance(params, RNNParams)
        return RecurrentNet(info, params, name)
    if name == "transformer":
        assert isinstance(params, TransformerParams)
        return TransformerNet(info, params)
    if name == "autoencoder":
        assert isinstance(params, AutoencoderParams)
        return Autoencoder(info, params)
    assert isinstance(params, GANParams)
    return GAN(info, params)
