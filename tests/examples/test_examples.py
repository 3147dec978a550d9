"""examples/ holds a runnable spec for every built-in model, each valid as `dljobs validate` reads it and each
listed with its measured result in docs/results.md; two of them (a CNN and the fine-tuning that starts from
its weights) train for real, shortened with `--set`-style overrides, through the workloads' runner."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from dljobs.spec.job import JobSpec
from dljobs.spec.loading import load_spec_file
from dljobs.spec.params import BUILTIN_MODELS
from dljobs.workloads.train.context import RunContext, with_seed
from tests.workloads.test_train_ray import ray_connected  # noqa: F401  (the module's Ray driver fixture)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "docs" / "results.md"


def example_files() -> list[Path]:
    """Every spec in examples/: top-level YAML files and each directory's job.yaml."""
    return sorted([*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("*/job.yaml")])


def name_of(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", example_files(), ids=name_of)
def test_every_example_validates_as_dljobs_validate_reads_it(path: Path) -> None:
    spec = load_spec_file(path)  # the loader `dljobs validate` and `dljobs submit` call
    if spec.workload.code is not None:  # shipped code is read relative to the spec file
        assert (path.parent / spec.workload.code).is_dir(), spec.workload.code
    if spec.workload.model is not None:
        assert spec.data is not None and spec.data.builtin_name is not None, "examples run on built-in data"
        assert spec.training.seed is not None, "a documented result needs a fixed seed"


def test_every_built_in_model_has_an_example_and_transfer_learning_has_one() -> None:
    specs = [load_spec_file(path) for path in example_files()]
    assert {s.workload.model for s in specs if s.workload.model} >= set(BUILTIN_MODELS)
    assert any(s.workload.init_from and s.workload.freeze for s in specs)
    assert len({s.name for s in specs}) == len(specs), "each example has its own job name"


def test_the_results_table_lists_every_example_with_a_figure() -> None:
    text = RESULTS.read_text()
    rows = {
        match.group(1): line
        for line in text.splitlines()
        if line.startswith("|") and (match := re.search(r"\[(examples/[^\]]+)\]", line))
    }
    assert sorted(rows) == [name_of(path) for path in example_files()]
    for path, row in rows.items():
        assert re.search(r"\d\.\d", row), f"{path}: no measured figure in its row"
    for model in BUILTIN_MODELS:
        assert f"`{model}`" in text


# --- two examples train for real, shortened --------------------------------------------------------------


def shortened(path: Path, *overrides: str) -> JobSpec:
    """The example as `dljobs submit FILE --set ...` would run it: one epoch on one worker."""
    return load_spec_file(path, ["training.epochs=1", "resources.workers=1", *overrides])


def run(spec: JobSpec, job_id: str, root: Path, **context: Any) -> dict[str, Any]:
    from dljobs.workloads.runner import run_model, with_init_from

    seed = spec.training.seed or 0
    ctx = with_init_from(spec, RunContext(job_id=job_id, artifacts_url=(root / job_id).as_uri(), **context))
    return run_model(with_seed(spec, seed), ctx, seed)


@pytest.mark.ray
def test_the_cnn_example_trains_and_its_fine_tuning_starts_from_its_weights(
    ray_connected: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    pretrained = run(shortened(EXAMPLES / "digits-cnn.yaml"), "6001", tmp_path)
    assert pretrained["test_metrics"]["test_accuracy"] > 0.5  # ten classes: chance is 0.1

    source = tmp_path / "6001" / "model.pt"
    finetune = shortened(EXAMPLES / "digits-cnn-finetune.yaml")
    assert finetune.workload.freeze == ["features"]
    tuned = run(finetune, "6002", tmp_path, init_from_url=source.as_uri())
    assert tuned["test_metrics"]["test_accuracy"] > 0.5

    before = torch.load(source, map_location="cpu")
    after = torch.load(tmp_path / "6002" / "model.pt", map_location="cpu")
    frozen = [key for key in before if key.startswith("features.") and before[key].is_floating_point()]
    trained = [key for key in before if key.startswith(("hidden.", "head.")) and key.endswith("weight")]
    assert frozen and trained
    # the convolutions' weights are exactly the earlier job's; the dense layer and the head moved
    assert all(torch.equal(before[k], after[k]) for k in frozen if "running_" not in k)
    assert all(not torch.equal(before[k], after[k]) for k in trained)
