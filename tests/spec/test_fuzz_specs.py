"""Property tests: whatever a spec holds, the loader answers with a JobSpec or a SpecError whose every problem
has a message on one line; problems with fields name the field and the line. Nothing else escapes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dljobs.spec.errors import SpecError
from dljobs.spec.job import JobSpec
from dljobs.spec.loading import load_spec_file, load_spec_text, validate_spec
from tests.spec.bad_specs import VALID_COMMAND_JOB, VALID_DIGITS_MLP

BASES = [yaml.safe_load(path.read_text()) for path in (VALID_DIGITS_MLP, VALID_COMMAND_JOB)]
FIELD_NAMES = sorted(
    {"name", "workload", "model", "params", "data", "source", "training", "epochs", "optimizer", "lr"}
    | {"resources", "workers", "timeout", "precision", "nesterov", "betas", "hidden", "code", "entrypoint"}
)
BOUNDED = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24),
    st.sampled_from(
        ["2h", "-1m", "0", "builtin://digits", "s3://b", "mlp", "sgd", "fp16", "8Gi", "1e-3", ""]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))


def _places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path below the root: mapping keys and list positions."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        yield (*path, key)
        yield from _places(child, (*path, key))


def _parent(document: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one to four changes: keys dropped, renamed or added, values replaced."""
    document = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        places = list(_places(document))
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent = _parent(document, path)
        action = draw(st.sampled_from(["drop", "rename", "add", "replace", "replace"]))
        if action == "drop":
            parent.pop(path[-1])
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(path[-1])
        elif action == "add":
            target = parent if isinstance(parent, dict) else document
            target[draw(keys)] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return document


def _check_answer(text: str | bytes, overrides: list[str] | None = None) -> JobSpec | SpecError:
    try:
        return load_spec_text(text, overrides)
    except SpecError as exc:
        assert exc.errors, "a SpecError with no problem in it"
        for problem in exc.errors:
            assert problem.message.strip(), exc.errors
            assert "\n" not in problem.render() and "\r" not in problem.render()
            assert "Input should" not in problem.message and "instance of" not in problem.message
        assert "\n" not in exc.summary()
        return exc


@BOUNDED
@given(mutated_documents())
def test_mutated_specs_are_valid_or_name_their_fields(document: dict[str, Any]) -> None:
    answer = _check_answer(yaml.safe_dump(document))
    if isinstance(answer, SpecError) and answer.code == "invalid_spec":
        for problem in answer.errors:
            assert problem.path, answer.errors  # a field-level problem names its field ...
            assert problem.line is not None, answer.errors  # ... and, from YAML, a line
        # the same document as a JSON body gets an answer of the same kind, naming fields too
        try:
            validate_spec(document)
        except SpecError as exc:
            assert all(problem.path for problem in exc.errors), exc.errors


@settings(max_examples=150, deadline=None, database=None)
@given(st.text(max_size=300))
def test_random_text_never_escapes_as_another_error(text: str) -> None:
    _check_answer(text)


@settings(max_examples=100, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_another_error(data: bytes) -> None:
    _check_answer(data)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.text(max_size=30), max_size=3))
def test_random_overrides_never_escape_as_another_error(overrides: list[str]) -> None:
    try:
        load_spec_file(VALID_COMMAND_JOB, overrides)
    except SpecError as exc:
        assert exc.errors and all(problem.message for problem in exc.errors)
        assert "\n" not in exc.summary()


FRAGMENTS = st.one_of(
    st.sampled_from(
        ["name: x", "workload:", "  command: echo", "  model: mlp", "data:", "- a", "&a b", "*a"]
    ),
    st.text(alphabet=" :-[]{}&*!|>#'\"\tab1", max_size=20),
)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(FRAGMENTS, max_size=8))
def test_yaml_like_fragments_never_escape(lines: list[str]) -> None:
    _check_answer("\n".join(lines))
