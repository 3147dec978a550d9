"""A served model's input schema, read from its model card, and the check every request's inputs pass.

Pure Python (no numpy, no torch): the controller checks inputs before they reach Ray Serve, and the
Serve replica runs the same check before it builds tensors.

An input is one example as the data files hold it: a list of numbers shaped like the card's `input.shape`
(nested, or flat with as many numbers), token ids for token models, and for a GAN generator a latent
vector of `latent_dim` numbers or an integer seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class InputError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class InputSchema:
    task: str
    shape: tuple[int, ...]
    dtype: str  # float32 | int64
    seeds: bool = False  # a generator also takes an integer seed per sample
    vocab_size: int | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "shape": list(self.shape), "dtype": self.dtype, "seeds": self.seeds}

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> InputSchema:
        task = str(card.get("task") or "classification")
        if task == "generation":
            params = (card.get("workload") or {}).get("params") or {}
            return cls(task, (int(params.get("latent_dim", 32)),), "float32", seeds=True)
        given = card.get("input") or {}
        shape = tuple(int(d) for d in given.get("shape") or ())
        if not shape:
            raise ValueError("the model card has no input shape")
        vocab = (card.get("output") or {}).get("vocab_size")
        return cls(task, shape, str(given.get("dtype") or "float32"), vocab_size=vocab)


def check_inputs(schema: InputSchema, inputs: Any, max_inputs: int) -> list[Any]:
    """`inputs` as flat lists of numbers (or int seeds), or InputError naming the first bad one."""
    if not isinstance(inputs, list) or not inputs:
        raise InputError("inputs", "expected a non-empty list of inputs")
    if len(inputs) > max_inputs:
        raise InputError(
            "inputs", f"{len(inputs)} inputs in one request; the endpoint takes at most {max_inputs}"
        )
    return [_one(schema, item, f"inputs[{i}]") for i, item in enumerate(inputs)]


def _one(schema: InputSchema, item: Any, where: str) -> Any:
    if schema.seeds and isinstance(item, int) and not isinstance(item, bool):
        if not 0 <= item < 2**63:
            raise InputError(where, "a seed is a non-negative integer")
        return item
    flat: list[Any] = []
    _flatten(item, flat, where)
    if len(flat) != schema.size:
        shape = "x".join(str(d) for d in schema.shape)
        raise InputError(where, f"expected {schema.size} values (shape {shape}), got {len(flat)}")
    integers = schema.dtype.startswith("int")
    for index, value in enumerate(flat):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where}[{index}]", f"expected a number, got {type(value).__name__}")
        if integers:
            if not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
                raise InputError(f"{where}[{index}]", "expected an integer token id")
            if value < 0 or (schema.vocab_size is not None and value >= schema.vocab_size):
                raise InputError(f"{where}[{index}]", f"token id {value} is outside the vocabulary")
        elif not math.isfinite(value):
            raise InputError(f"{where}[{index}]", "NaN and infinities are not inputs")
    return flat


def _flatten(item: Any, out: list[Any], where: str, depth: int = 0) -> None:
    if depth > 8:
        raise InputError(where, "nested too deep")
    if isinstance(item, list):
        for value in item:
            if isinstance(value, list):
                _flatten(value, out, where, depth + 1)
            else:
                out.append(value)
    else:
        raise InputError(where, f"expected a list of numbers, got {type(item).__name__}")
