"""The input check every predict request passes: shapes, numbers, token ids, seeds; the field it blames."""

from __future__ import annotations

import math

import pytest

from dljobs.spec.inputs import InputError, InputSchema, check_inputs

IMAGE = InputSchema("classification", (1, 8, 8), "float32")


def test_nested_or_flat_inputs_of_the_right_size_pass() -> None:
    nested = [[[float(i)] * 8 for i in range(8)]]
    assert check_inputs(IMAGE, [nested, [0.5] * 64], 4) == [
        [float(i) for i in range(8) for _ in range(8)],
        [0.5] * 64,
    ]


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ([[0.0] * 63], "inputs[0]", "expected 64 values"),
        ([[0.0] * 64, "x"], "inputs[1]", "expected a list"),
        ([[0.0] * 63 + [math.nan]], "inputs[0][63]", "NaN"),
        ([[0.0] * 63 + [True]], "inputs[0][63]", "expected a number"),
        ([], "inputs", "non-empty"),
        ([[0.0] * 64] * 5, "inputs", "at most 4"),
    ],
)
def test_bad_inputs_name_the_field(inputs: list[object], field: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        check_inputs(IMAGE, inputs, 4)
    assert caught.value.field == field and words in caught.value.message


def test_token_ids_stay_in_the_vocabulary_and_generators_take_seeds() -> None:
    tokens = InputSchema("classification", (3,), "int64", vocab_size=10)
    assert check_inputs(tokens, [[1, 2, 9]], 4) == [[1, 2, 9]]
    with pytest.raises(InputError, match="outside the vocabulary"):
        check_inputs(tokens, [[1, 2, 10]], 4)
    with pytest.raises(InputError, match="integer token id"):
        check_inputs(tokens, [[1, 2, 0.5]], 4)
    card = {"task": "generation", "workload": {"params": {"latent_dim": 4}}}
    generator = InputSchema.from_card(card)
    assert check_inputs(generator, [7, [0.0] * 4], 4) == [7, [0.0] * 4]
    with pytest.raises(InputError):
        check_inputs(generator, [[0.0] * 3], 4)
