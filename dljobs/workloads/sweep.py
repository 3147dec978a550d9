"""A sweep's driver: Ray Tune over `sweep.space`, each trial a TorchTrainer (workloads.sweep_trial).

- The data is loaded once, here, and handed to every trial through the object store.
- Algorithms: grid and random (Tune's variant generator, seeded), bayesian (Optuna's TPE, seeded); asha,
  hyperband and median are schedulers that stop trials early, fed by `searcher`; pbt perturbs them.
- Concurrency: `sweep.max_concurrent` (the controller fills it in within the project's quota and reserves
  that many trials' resources for the sweep). A trial's own Tune actor takes no CPU (a token byte of
  `memory`): its TorchTrainer's workers hold the trial's resources, so a stopped trial's are free for the
  next at once, and `max_concurrent` trials fit a cluster of exactly their size.
- Budget: `trial_epochs` and `gpu_hours` stop the sweep through a Tune stopper, `max_wall` is Tune's time
  budget. Failed trials are retried `trial_retries` times and then marked failed; the sweep goes on.
- Resume: the Tune experiment lives under the job's checkpoints (`dljobs-sweep-<id>`); a new attempt of the
  job restores it, and finished trials are not run again.
- The end: the best trial (by the sweep's metric, over all its epochs) gives the job's model, card and
  metrics exactly as a single job's, plus `sweep.json` and the sweep report `sweep.png`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from dljobs.spec.job import JobSpec
from dljobs.spec.sweep import SCHEDULERS, Distribution, SweepSpec
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.sweep_trial import POINT_KEY, read_trial_summary, run_trial, trial_number
from dljobs.workloads.train.context import RunContext

RESULT_EPOCHS = "training_iteration"  # Tune's count of a trial's reports: one per epoch
# Tune refuses an empty request; a share of a CPU would add up over trials (2 x (0.001 + 1) CPUs do not fit
# on 2 CPUs), so the trial's actor asks for one byte of Ray's `memory` resource instead.
TRIAL_DRIVER_RESOURCES = {"CPU": 0, "memory": 1}


def tune_domain(distribution: Distribution) -> Any:
    from ray import tune

    args = distribution.args
    if distribution.kind == "uniform":
        return tune.uniform(*args)
    if distribution.kind == "loguniform":
        return tune.loguniform(*args)
    if distribution.kind == "randint":
        return tune.randint(int(args[0]), int(args[1]) + 1)  # the spec includes high; Tune excludes it
    if distribution.kind == "choice":
        return tune.choice(args)
    return tune.grid_search(args)


def param_space(sweep: SweepSpec) -> dict[str, Any]:
    return {POINT_KEY: {path: tune_domain(d) for path, d in sweep.space.items()}}


def search_algorithm(sweep: SweepSpec, seed: int) -> Any:
    """What proposes points: Tune's variant generator (grid, random) or Optuna's TPE (bayesian)."""
    bayesian = sweep.algorithm == "bayesian" or (
        sweep.algorithm in ("asha", "hyperband", "median") and sweep.searcher == "bayesian"
    )
    if bayesian:
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=seed)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Tune applies `max_concurrent_trials` to a Searcher (Optuna) only: a variant generator takes it itself
    return BasicVariantGenerator(random_state=seed, max_concurrent=sweep.max_concurrent or 0)


def scheduler(sweep: SweepSpec, epochs: int) -> Any:
    from ray.tune import schedulers

    if sweep.algorithm == "asha":
        return schedulers.ASHAScheduler(
            time_attr=RESULT_EPOCHS,
            max_t=epochs,
            grace_period=min(sweep.grace_epochs, epochs),
            reduction_factor=sweep.reduction_factor,
            # a trial that reaches its last epoch ends by itself: its test pass and summary happen
            stop_last_trials=False,
        )
    if sweep.algorithm == "hyperband":
        return schedulers.HyperBandScheduler(
            time_attr=RESULT_EPOCHS,
            max_t=epochs,
            reduction_factor=sweep.reduction_factor,
            stop_last_trials=False,
        )
    if sweep.algorithm == "median":
        return schedulers.MedianStoppingRule(
            time_attr=RESULT_EPOCHS, grace_period=sweep.grace_epochs, min_samples_required=3
        )
    if sweep.algorithm == "pbt":
        return schedulers.PopulationBasedTraining(
            time_attr=RESULT_EPOCHS,
            perturbation_interval=sweep.grace_epochs,
            hyperparam_mutations=param_space(sweep),
        )
    return schedulers.FIFOScheduler()


def budget_stopper(sweep: SweepSpec, gpus_per_trial: float) -> Any:
    """Stops the whole sweep when all trials together used `trial_epochs` epochs or `gpu_hours`."""
    from ray.tune import Stopper

    budget = sweep.budget

    class Budget(Stopper):
        def __init__(self) -> None:
            self.epochs = 0
            self.seconds: dict[str, float] = {}

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.epochs += 1
            self.seconds[trial_id] = float(result.get("time_total_s") or 0.0)
            return False

        def stop_all(self) -> bool:
            if budget.trial_epochs is not None and self.epochs >= budget.trial_epochs:
                return True
            if budget.gpu_hours is not None and gpus_per_trial > 0:
                return sum(self.seconds.values()) * gpus_per_trial / 3600 >= budget.gpu_hours
            return False

    return Budget()


def experiment_name(context: RunContext) -> str:
    return f"dljobs-sweep-{context.job_id}"


def tune_config(sweep: SweepSpec, epochs: int, seed: int) -> Any:
    """How Tune runs the sweep's trials: search, scheduler, concurrency and the time budget."""
    from ray import tune

    trials = sweep.total_trials
    return tune.TuneConfig(
        metric=sweep.metric,
        mode=sweep.resolved_mode,
        search_alg=search_algorithm(sweep, seed),
        scheduler=scheduler(sweep, epochs),
        num_samples=trials // sweep.grid_size if sweep.grid_size > 1 else trials,
        max_concurrent_trials=sweep.max_concurrent or trials,
        time_budget_s=sweep.budget.max_wall,
        # Trials that always run to their end leave their actor free, torch and Ray Train imported, for the
        # next trial. Not under a scheduler: a trial it stops is still inside its TorchTrainer's fit, and its
        # actor must end at once, taking its Train workers and their resources with it.
        reuse_actors=sweep.algorithm not in SCHEDULERS,
    )


def build_tuner(spec: JobSpec, context: RunContext, data: dict[str, Any], datasets: dict[str, Any]) -> Any:
    """A Tuner for the sweep, or the restored one when an earlier attempt left its experiment behind."""
    from ray import tune

    from dljobs.workloads.train.trainer import checkpoint_storage

    sweep = spec.sweep
    assert sweep is not None
    seed = spec.training.seed or 0
    base = {"spec": spec.model_dump(mode="json"), "context": context.to_dict(), "data": data}
    if datasets:
        base["datasets"] = datasets
    # The trial's Tune actor only drives its TorchTrainer: the workers hold the trial's resources.
    trainable = tune.with_resources(tune.with_parameters(run_trial, base=base), TRIAL_DRIVER_RESOURCES)
    storage_path, filesystem = checkpoint_storage(context)
    path = os.path.join(storage_path, experiment_name(context))
    if tune.Tuner.can_restore(path, storage_filesystem=filesystem):
        from dljobs.workloads.runner import say

        say("resuming the sweep: finished trials are kept, unfinished ones start again")
        return tune.Tuner.restore(
            path, trainable, resume_errored=True, restart_errored=False, storage_filesystem=filesystem
        )
    from dljobs.workloads.sweep_trial import trial_reporting_callback

    epochs = spec.training.epochs
    run_config = tune.RunConfig(
        name=experiment_name(context),
        storage_path=storage_path,
        storage_filesystem=filesystem,
        failure_config=tune.FailureConfig(max_failures=sweep.trial_retries),
        stop=budget_stopper(sweep, spec.resources.total_gpus),
        callbacks=[trial_reporting_callback(context, sweep.metric, sweep.resolved_mode, epochs)],
        verbose=0,
    )
    return tune.Tuner(
        trainable,
        param_space=param_space(sweep),
        tune_config=tune_config(sweep, epochs, seed),
        run_config=run_config,
    )


@dataclasses.dataclass
class BestTrial:
    number: int
    point: dict[str, Any]
    metric: float
    summary: dict[str, Any]
    checkpoint: str | None  # the path of its best checkpoint, in the job's checkpoint storage


def trial_rows(results: Any, metric: str, mode: str) -> list[dict[str, Any]]:
    """Every trial: number, point, status, best metric and the epochs it ran, from Tune's results."""
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        values = [] if frame is None or metric not in frame else [v for v in frame[metric] if _finite(v)]
        best = (max(values) if mode == "max" else min(values)) if values else None
        history = [] if frame is None else frame.to_dict("records")
        trial_id = (result.metrics or {}).get("trial_id")
        if not trial_id:
            continue  # it never reported
        rows.append(
            {
                "number": trial_number(trial_id),
                "point": dict(result.config.get(POINT_KEY, {})),
                "metric": best,
                "epochs": len(history),
                "history": history,
                "error": str(result.error) if result.error else None,
            }
        )
    return rows


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def best_trial(rows: list[dict[str, Any]], context: RunContext, metric: str, mode: str) -> BestTrial:
    ranked = [row for row in rows if row["metric"] is not None]
    if not ranked:
        errors = [row["error"] for row in rows if row["error"]]
        reason = f": {errors[0]}" if errors else ""
        raise WorkloadError(f"no trial reported {metric}{reason}", field="sweep.metric")
    ranked.sort(key=lambda row: row["metric"], reverse=mode == "max")
    best = ranked[0]
    stored = read_trial_summary(context, best["number"])
    if stored is not None:
        summary, checkpoint = stored["summary"], stored["checkpoint"]
    else:  # stopped before its end: its best reported epoch with a checkpoint
        summary, checkpoint = summary_from_history(best["history"], metric, mode)
    return BestTrial(best["number"], best["point"], best["metric"], summary, checkpoint)


def summary_from_history(history: list[dict[str, Any]], metric: str, mode: str) -> tuple[dict[str, Any], str]:
    kept = [row for row in history if row.get("checkpoint_path") and _finite(row.get(metric))]
    if not kept:
        raise WorkloadError(f"the best trial left no checkpoint with {metric}", field="sweep.metric")
    chosen = (max if mode == "max" else min)(kept, key=lambda row: row[metric])
    own = [{k: v for k, v in row.items() if k in _HISTORY_KEYS or k == metric} for row in history]
    summary = {
        "history": own,
        "final_metrics": own[-1] if own else {},
        "best": {"metric": metric, "value": chosen[metric], "epoch": chosen.get("epoch")},
        "stopped_early": True,
        "global_step": chosen.get("step"),
    }
    return summary, chosen["checkpoint_path"]


_HISTORY_KEYS = ("epoch", "step", "loss", "lr", "val_loss", "samples_per_second", "epoch_time")


def run_sweep(spec: JobSpec, context: RunContext, seed: int) -> dict[str, Any]:
    """The runner's sweep: trials on Tune, then the best trial's artifacts as the job's."""
    from dljobs.spec.loading import read_stored_spec
    from dljobs.spec.sweep import trial_document
    from dljobs.storage import open_store
    from dljobs.workloads.artifacts import (
        ArtifactWriter,
        model_card,
        write_custom_artifacts,
        write_model_artifacts,
    )
    from dljobs.workloads.runner import connect_ray, finish, hand_over, prepare_model_data, say

    sweep = spec.sweep
    assert sweep is not None
    document = spec.model_dump(mode="json")
    first = read_stored_spec(trial_document(document, {}))
    info = prepared = None
    if spec.workload.kind == "model":
        from dljobs.workloads.train.loop import training_model
        from dljobs.workloads.train.metrics import check_monitored

        info, prepared = prepare_model_data(spec, seed)
        check_monitored(first.training, info, has_validation=info.num_val > 0)
        training_model(first, info, context)
        connect_ray()
        data_config, datasets = hand_over(prepared)
    else:
        from dljobs.workloads.train.custom import CODE_DIR_KEY

        connect_ray()
        data_config, datasets = {CODE_DIR_KEY: os.getcwd()}, {}
    say(
        f"sweep: {sweep.algorithm}, {sweep.total_trials} trials, at most "
        f"{sweep.max_concurrent or sweep.total_trials} at a time, by {sweep.metric} ({sweep.resolved_mode})"
    )
    tuner = build_tuner(spec, context, data_config, datasets)
    results = tuner.fit()
    rows = trial_rows(results, sweep.metric, sweep.resolved_mode)
    best = best_trial(rows, context, sweep.metric, sweep.resolved_mode)
    say(f"best trial: {best.number}, {sweep.metric}={best.metric:.4g}, {best.point}")
    trial_spec = read_stored_spec(trial_document(document, best.point))
    writer = ArtifactWriter(open_store(context.artifacts_url or "", endpoint_url=context.s3_endpoint_url))
    model_bytes = best_model_bytes(best, context) if info is not None and best.checkpoint else None
    test_split = getattr(prepared, "test", None)  # in-memory data only
    if model_bytes is not None and test_split is not None and not best.summary.get("test_metrics"):
        # a scheduler stopped the trial (PBT, a rung at its last epoch) before its own test pass
        best.summary.update(evaluate_test_split(trial_spec, info, test_split, model_bytes))
    card = model_card(
        spec=trial_spec,
        job_id=context.job_id,
        attempt=context.attempt,
        seed=seed,
        summary=best.summary,
        info=info,
    )
    card["sweep"] = {
        "best_trial": best.number,
        "point": best.point,
        "metric": sweep.metric,
        "value": best.metric,
        "trials": len(rows),
    }
    if model_bytes is not None:
        write_model_artifacts(
            writer, spec=trial_spec, info=info, model_bytes=model_bytes, card=card, summary=best.summary
        )
    else:
        write_custom_artifacts(writer, card=card, summary=best.summary)
    write_sweep_report(writer, sweep, rows)
    return finish(writer, context, best.summary)


def best_model_bytes(best: BestTrial, context: RunContext) -> bytes:
    from ray.train import Checkpoint

    from dljobs.workloads.train.checkpoints import MODEL_FILE, read_checkpoint_file
    from dljobs.workloads.train.trainer import checkpoint_storage

    _, filesystem = checkpoint_storage(context)
    return read_checkpoint_file(Checkpoint(path=best.checkpoint, filesystem=filesystem), MODEL_FILE)


def evaluate_test_split(spec: JobSpec, info: Any, test: Any, model_bytes: bytes) -> dict[str, Any]:
    """The test split's metrics of the best trial's model, computed here on the driver's CPU."""
    import torch

    from dljobs.workloads.models import build_model
    from dljobs.workloads.train.checkpoints import load_state_dict_bytes
    from dljobs.workloads.train.engine import evaluate_model
    from dljobs.workloads.train.loaders import eval_loader
    from dljobs.workloads.train.precision import Precision

    if info.task == "generation":
        return {}
    model = build_model(spec.workload, info)
    model.load_state_dict(load_state_dict_bytes(model_bytes))
    loader = eval_loader(test, batch_size=spec.training.batch_size, rank=0, world=1, pin_memory=False)
    precision = Precision(torch.device("cpu"), "bf16" if spec.training.precision == "bf16" else "fp32")
    result = evaluate_model(model, info, precision, loader or [], "test")
    return {"test_metrics": result.scalars, "test_confusion_matrix": result.confusion_matrix}


def write_sweep_report(writer: Any, sweep: SweepSpec, rows: list[dict[str, Any]]) -> None:
    """sweep.json: every trial's point, best metric and epochs, ranked; sweep.png: the report."""
    ranked = sorted(
        rows,
        key=lambda row: (
            row["metric"] is None,
            -(row["metric"] or 0) if sweep.resolved_mode == "max" else row["metric"] or 0,
        ),
    )
    trials = [{k: v for k, v in row.items() if k != "history"} for row in ranked]
    writer.write_json(
        "sweep.json",
        {"metric": sweep.metric, "mode": sweep.resolved_mode, "algorithm": sweep.algorithm, "trials": trials},
        "metrics",
    )
    from dljobs.workloads.sweep_report import render_report

    png = render_report(sweep.metric, sweep.resolved_mode, list(sweep.space), ranked)
    writer.write("sweep.png", png, "other")
