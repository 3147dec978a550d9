"""Transfer learning: start from earlier weights, give the model a new head, keep chosen layers fixed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from dljobs.workloads.errors import WorkloadError

INIT_FIELD = "workload.init_from"
FREEZE_FIELD = "workload.freeze"


@dataclass
class LoadResult:
    loaded: list[str] = field(default_factory=list)  # state-dict keys taken from the earlier weights
    head_replaced: bool = False  # the head was rebuilt (new class count) and starts untrained


def head_owner(model: nn.Module) -> nn.Module:
    """The module whose `head` attribute is the model's final layer (the GAN's generator)."""
    generator = getattr(model, "generator", None)
    return generator if isinstance(generator, nn.Module) and hasattr(generator, "head") else model


def head_prefix(model: nn.Module) -> str:
    return "generator.head." if head_owner(model) is not model else "head."


def replace_head(model: nn.Module, out_features: int) -> nn.Linear:
    """A freshly initialised head with `out_features` outputs, on the old head's device and dtype."""
    owner = head_owner(model)
    old = owner.head
    if not isinstance(old, nn.Linear):
        raise TypeError(f"{type(model).__name__}.head is not a Linear layer")
    new = nn.Linear(old.in_features, out_features).to(device=old.weight.device, dtype=old.weight.dtype)
    owner.head = new
    return new


def load_pretrained(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, new_num_classes: int | None = None
) -> LoadResult:
    """Load earlier weights into `model` (in place).

    Every layer outside the head must match in name and shape, or a `WorkloadError` on
    `workload.init_from` names the layer. With `new_num_classes` different from the head's width the head
    is replaced by a new, untrained one; a head that fits the earlier weights is loaded with them.
    """
    weights = {_strip_wrapper(key): value for key, value in state_dict.items()}
    if new_num_classes is not None and head_owner(model).head.out_features != new_num_classes:
        replace_head(model, new_num_classes)
        replaced = True
    else:
        replaced = False
    prefix = head_prefix(model)
    own = model.state_dict()
    missing = [k for k in own if k not in weights and not k.startswith(prefix)]
    if missing:
        raise WorkloadError(
            f"the weights have no layer '{_layer(missing[0])}' ({len(missing)} tensors missing): they come "
            "from a model built differently (other model or params)",
            field=INIT_FIELD,
        )
    unexpected = [k for k in weights if k not in own and not k.startswith(prefix)]
    if unexpected:
        raise WorkloadError(
            f"the weights hold layer '{_layer(unexpected[0])}', which this model does not have: they come "
            "from a model built differently (other model or params)",
            field=INIT_FIELD,
        )
    chosen: dict[str, torch.Tensor] = {}
    head_fits = all(
        k in weights and tuple(weights[k].shape) == tuple(v.shape)
        for k, v in own.items()
        if k.startswith(prefix)
    )
    for key, target in own.items():
        if key.startswith(prefix) and not head_fits:
            continue
        value = weights[key]
        if not isinstance(value, torch.Tensor):
            raise WorkloadError(f"'{key}' in the weights is not a tensor", field=INIT_FIELD)
        if tuple(value.shape) != tuple(target.shape):
            raise WorkloadError(
                f"layer '{_layer(key)}' has shape {tuple(value.shape)} in the weights but "
                f"{tuple(target.shape)} in this model ('{key}'): the data or params differ in a layer "
                "outside the head",
                field=INIT_FIELD,
            )
        chosen[key] = value
    model.load_state_dict(chosen, strict=False)
    if not head_fits and not replaced:
        replaced = True  # the old head did not fit: the model keeps its own, untrained one
    return LoadResult(loaded=sorted(chosen), head_replaced=replaced)


def _strip_wrapper(key: str) -> str:
    """Keys saved from a DistributedDataParallel or compiled model carry a wrapper prefix."""
    for wrapper in ("module.", "_orig_mod."):
        while key.startswith(wrapper):
            key = key[len(wrapper) :]
    return key


def _layer(key: str) -> str:
    return key.rsplit(".", 1)[0]


def freeze(model: nn.Module, names: Iterable[str]) -> list[str]:
    """Stop gradients for every parameter whose name is `name` or starts with `name.`; returns them.

    A name that matches nothing is a `WorkloadError` on `workload.freeze` listing the model's top-level
    layers. (Batch-norm running statistics inside frozen layers still follow the data in training mode.)
    """
    parameters = dict(model.named_parameters())
    frozen: list[str] = []
    for name in names:
        clean = name.strip().rstrip(".")
        matched = [p for p in parameters if p == clean or p.startswith(clean + ".")]
        if not clean or not matched:
            top = [n for n, _ in model.named_children()] + [
                n for n, _ in model.named_parameters(recurse=False)
            ]
            layers = ", ".join(top)
            raise WorkloadError(
                f"'{name}' names no layer of this model (layers: {layers})", field=FREEZE_FIELD
            )
        for parameter_name in matched:
            parameters[parameter_name].requires_grad_(False)
            if parameter_name not in frozen:
                frozen.append(parameter_name)
    return frozen
