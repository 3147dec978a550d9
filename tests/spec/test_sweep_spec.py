"""The `sweep:` section: a good sweep validates; a space path the job lacks, or a distribution whose values
the field refuses, is one error naming the field path and its YAML line (`dljobs validate` exits 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dljobs.spec.errors import SpecError
from dljobs.spec.loading import load_spec_file, load_spec_text, validate_spec
from dljobs.spec.sweep import trial_document
from tests.cli.runner import ROOT, error_lines, run_cli

EXAMPLE = ROOT / "examples" / "digits-mlp-sweep.yaml"
BASE = """\
name: s
workload:
  model: mlp
data: {source: builtin://digits}
sweep:
  metric: val_accuracy
  algorithm: ALGO
  space:
    ENTRY
"""

# (algorithm, the space entry, the field the error names, words of its message); the entry is on line 9.
BAD = [
    ("asha", "training.optimizer.lrr: {uniform: [0.1, 0.2]}", "sweep.space.training.optimizer.lrr", "'lr'?"),
    ("random", "workload.params.hiden: {choice: [1]}", "sweep.space.workload.params.hiden", "'hidden'?"),
    ("random", "training.optimizer: {choice: [1]}", "sweep.space.training.optimizer", "is a section"),
    ("random", "resources.workers: {choice: [1, 2]}", "sweep.space.resources.workers", "same for every"),
    ("random", "training.seed: {randint: [1, 9]}", "sweep.space.training.seed", "same for every"),
    (
        "random",
        "training.batch_size: {uniform: [16, 64]}",
        "sweep.space.training.batch_size.uniform",
        "use randint or choice",
    ),
    (
        "random",
        "training.optimizer.lr: {loguniform: [1.0e-4, 100]}",
        "sweep.space.training.optimizer.lr.loguniform",
        "must be at most 10",
    ),
    (
        "random",
        "workload.params.dropout: {choice: [0.1, 'x']}",
        "sweep.space.workload.params.dropout.choice",
        "expected a number",
    ),
    (
        "random",
        "training.optimizer.name: {choice: [adam, adan]}",
        "sweep.space.training.optimizer.name.choice",
        "'adam'?",
    ),
    (
        "random",
        "training.optimizer.lr: {uniform: [0.5, 0.1]}",
        "sweep.space.training.optimizer.lr.uniform",
        "below",
    ),
    (
        "random",
        "training.optimizer.lr: {gauss: [0.5, 0.1]}",
        "sweep.space.training.optimizer.lr.gauss",
        "unknown",
    ),
    (
        "random",
        "training.optimizer.lr: {loguniform: [0, 0.1]}",
        "sweep.space.training.optimizer.lr.loguniform",
        "above 0",
    ),
    (
        "bayesian",
        "workload.params.hidden: {grid: [[8], [16]]}",
        "sweep.space.workload.params.hidden",
        "choice",
    ),
    (
        "grid",
        "training.optimizer.lr: {uniform: [0.1, 0.2]}",
        "sweep.space.training.optimizer.lr",
        "grid entries",
    ),
    ("asha", "Training.lr: {uniform: [0.1, 0.2]}", "sweep.space.Training.lr", "not a field path"),
]


def _spec(algorithm: str, entry: str) -> str:
    return BASE.replace("ALGO", algorithm).replace("ENTRY", entry)


@pytest.mark.parametrize(("algorithm", "entry", "field", "says"), BAD, ids=[b[2] + "-" + b[3] for b in BAD])
def test_a_bad_space_names_the_field_and_its_line(algorithm: str, entry: str, field: str, says: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(_spec(algorithm, entry))
    assert len(caught.value.errors) == 1, caught.value.errors
    error = caught.value.errors[0]
    assert (error.path, error.line) == (field, 9), error
    assert says in error.message, error.message
    assert "Input should" not in error.message and "Value error" not in error.message


def test_the_example_sweep_validates_and_counts_its_trials() -> None:
    spec = load_spec_file(EXAMPLE)
    assert spec.kind == "sweep" and spec.sweep is not None
    assert spec.sweep.total_trials == 24 and spec.sweep.grid_size == 2
    assert spec.sweep.resolved_mode == "max"
    assert spec.sweep.space["training.optimizer.lr"].kind == "loguniform"


def test_a_grid_sets_the_default_number_of_trials() -> None:
    grid = load_spec_text(_spec("grid", "workload.params.hidden: {grid: [[8], [16], [32]]}"))
    assert grid.sweep is not None and grid.sweep.total_trials == 3
    mixed = load_spec_text(_spec("random", "workload.params.hidden: {grid: [[8], [16], [32]]}"))
    assert mixed.sweep is not None and mixed.sweep.total_trials == 12  # a multiple of the grid


def test_trials_must_be_a_multiple_of_the_grid() -> None:
    text = _spec("random", "workload.params.hidden: {grid: [[8], [16]]}").replace(
        "  algorithm", "  trials: 5\n  algorithm"
    )
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    assert caught.value.errors[0].path == "sweep.trials" and "multiple of 2" in caught.value.errors[0].message


def test_a_command_cannot_be_swept() -> None:
    document = {
        "name": "c",
        "workload": {"command": "echo"},
        "sweep": {"metric": "loss", "space": {"training.epochs": {"choice": [1]}}},
    }
    with pytest.raises(SpecError) as caught:
        validate_spec(document)
    assert caught.value.errors[0].path == "sweep"


def test_custom_code_params_are_free() -> None:
    document = {
        "name": "c",
        "workload": {"code": "bundle://" + "0" * 64, "entrypoint": "train.py:main"},
        "sweep": {"metric": "loss", "space": {"workload.params.anything": {"uniform": [0.0, 1.0]}}},
    }
    assert validate_spec(document).sweep is not None


def test_a_trial_document_holds_the_point_and_ranks_by_the_sweep_metric() -> None:
    spec = load_spec_file(EXAMPLE)
    point = {"training.optimizer.lr": 0.01, "workload.params.hidden": [256, 128]}
    document = trial_document(spec.model_dump(mode="json"), point)
    trial = validate_spec(document)
    assert trial.sweep is None and trial.training.optimizer.lr == 0.01
    assert trial.workload.params["hidden"] == [256, 128]
    assert (trial.training.best_metric, trial.training.best_mode) == ("val_accuracy", "max")


def test_cli_validate_exits_2_with_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(_spec("asha", "training.optimizer.lrr: {uniform: [0.1, 0.2]}"))
    result = run_cli(["validate", str(spec)], tmp_path)
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and "sweep.space.training.optimizer.lrr (line 9)" in lines[0], lines
    assert "Traceback" not in result.stderr
