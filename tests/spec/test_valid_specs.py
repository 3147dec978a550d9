"""Good specs: the full example validates, `--set` overrides, `dljobs validate -o json` prints the resolved
spec, `dljobs schema` is a JSON Schema that checks the example, stored specs are read tolerantly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from dljobs.spec.errors import SpecError
from dljobs.spec.job import JobSpec
from dljobs.spec.loading import load_spec_file, load_spec_text, read_stored_spec
from dljobs.spec.training import OptimizerSpec
from tests.cli.runner import ROOT, run_cli
from tests.spec.bad_specs import VALID_COMMAND_JOB, VALID_DIGITS_MLP


@pytest.fixture
def example() -> Path:
    """examples/…/digits-mlp when the repository ships it, else the README's text (tests/spec/valid/)."""
    for candidate in sorted((ROOT / "examples").rglob("*.y*ml")):
        text = candidate.read_text()
        if "name: digits-mlp" in text:
            return candidate
    return VALID_DIGITS_MLP


def test_the_full_example_validates(example: Path) -> None:
    spec = load_spec_file(example)
    assert spec.name == "digits-mlp" and spec.workload.model == "mlp"
    assert spec.data is not None and spec.data.builtin_name == "digits"
    assert spec.training.early_stopping is not None


def test_set_overrides_a_field(example: Path) -> None:
    spec = load_spec_file(example, ["training.optimizer.lr=0.05", "resources.workers=4", "name=digits-big"])
    assert spec.training.optimizer.lr == 0.05
    assert spec.resources.workers == 4 and spec.name == "digits-big"
    untouched = load_spec_file(example)
    assert untouched.training.optimizer.lr != 0.05


def test_set_creates_a_section_that_is_not_written() -> None:
    spec = load_spec_file(
        VALID_COMMAND_JOB, ["training.optimizer.name=sgd", "training.optimizer.momentum=0.9"]
    )
    assert spec.training.optimizer.name == "sgd" and spec.training.optimizer.momentum == 0.9


def test_validate_prints_the_resolved_spec_with_defaults(tmp_path: Path) -> None:
    spec = tmp_path / "small.yaml"
    spec.write_text("name: small\nworkload:\n  command: echo hi\ntimeout: 2h\n")
    result = run_cli(["validate", str(spec), "-o", "json", "--set", "training.optimizer.lr=0.01"], tmp_path)
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["training"]["optimizer"]["lr"] == 0.01
    assert resolved["training"]["epochs"] == 10 and resolved["resources"]["workers"] == 1
    assert resolved["project"] == "default" and resolved["priority"] == "normal" and resolved["retries"] == 2
    assert resolved["timeout"] == "2h"
    # the resolved spec is itself a valid spec, and the same one
    assert load_spec_text(json.dumps(resolved)).model_dump(mode="json") == resolved


def test_validate_says_valid_in_one_line(example: Path, tmp_path: Path) -> None:
    result = run_cli(["validate", str(example)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("valid: ") and "digits-mlp" in result.stdout


@pytest.fixture(scope="module")
def json_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = run_cli(["schema"], tmp_path_factory.mktemp("home"))
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def test_schema_accepts_the_example(json_schema: dict[str, Any], example: Path) -> None:
    document = yaml.safe_load(example.read_text())
    jsonschema.Draft202012Validator(json_schema).validate(document)  # timeout 2h, memory 2Gi included


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"resorces": {"workers": 2}}, "resorces"),
        ({"training": {"epocs": 3}}, "epocs"),
        ({"name": "Team/Job"}, "Team/Job"),
        ({"timeout": "2 hours"}, "2 hours"),
        ({"resources": {"workers": 0}}, "0"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(
    json_schema: dict[str, Any], example: Path, change: dict[str, Any], where: str
) -> None:
    document = yaml.safe_load(example.read_text())
    for key, value in change.items():
        document[key] = {**document[key], **value} if isinstance(value, dict) and key in document else value
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.Draft202012Validator(json_schema).validate(document)
    assert where in str(caught.value.message)
    with pytest.raises(SpecError):
        load_spec_text(yaml.safe_dump(document))


def test_timeout_round_trips_as_written() -> None:
    spec = load_spec_text("name: t\nworkload:\n  command: echo hi\ntimeout: 2h\n")
    assert spec.timeout == 7200
    stored = spec.model_dump(mode="json")
    assert stored["timeout"] == "2h"
    assert read_stored_spec(stored).timeout == 7200
    assert (
        load_spec_text("name: t\nworkload:\n  command: echo hi\ntimeout: 90m\n").model_dump(mode="json")[
            "timeout"
        ]
        == "1h30m"
    )


def test_stored_spec_reads_tolerantly() -> None:
    stored = load_spec_text(VALID_DIGITS_MLP.read_text()).model_dump(mode="json")
    stored["added_later"] = {"anything": 1}
    stored["training"]["optimizer"]["new_knob"] = True
    stored["resources"]["new_limit"] = 3
    spec = read_stored_spec(stored)
    assert spec == JobSpec.model_validate(
        load_spec_text(VALID_DIGITS_MLP.read_text()).model_dump(mode="json")
    )
    assert "added_later" in stored  # the stored document itself is left as it was
    # a value of the wrong type is still an error: tolerance covers keys only
    stored["training"]["epochs"] = "many"
    with pytest.raises(ValidationError):
        read_stored_spec(stored)


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        ({"name": "adamw"}, 0.01),
        ({"name": "adam"}, 0.0),
        ({"name": "sgd", "momentum": 0.9}, 0.0),
        ({"name": "adam", "weight_decay": 0.001}, 0.001),
    ],
)
def test_weight_decay_defaults_by_optimizer(optimizer: dict[str, object], expected: float) -> None:
    assert OptimizerSpec.model_validate(optimizer).weight_decay == expected
