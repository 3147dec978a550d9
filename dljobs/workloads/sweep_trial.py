"""One trial of a sweep, and what the sweep's driver tells the controller about its trials.

A trial is a Tune function trainable that fits a Train v2 TorchTrainer, the pattern Ray documents for Train
inside Tune: the trainer's `TuneReportCallback` passes every `ray.train.report` (one per epoch) on to Tune,
whose scheduler may stop the trial; stopping the trial's actor ends its Train controller and workers, so
their resources are free at once. Each trial's number is Tune's trial counter + 1 (stable across a resumed
sweep); its Ray Train run is `dljobs-job-<id>-trial-<n>` under the job's checkpoints, and a trial that ends
normally leaves `trials/<n>/summary.json` (its summary and chosen checkpoint) beside the job's artifacts.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

from dljobs.spec.loading import read_stored_spec
from dljobs.spec.sweep import trial_document
from dljobs.storage import open_store
from dljobs.workloads.errors import WorkloadError
from dljobs.workloads.reporting import Reporter
from dljobs.workloads.train.context import RunContext, loop_config

POINT_KEY = "point"  # in a trial's Tune config: {field path: value}
TRIALS_DIR = "trials"
SUMMARY_FILE = "summary.json"
FLUSH_INTERVAL_S = 0.5


def trial_number(trial_id: str) -> int:
    """Tune's ids end in a zero-padded counter (`a1b2c_00003`): trial 4."""
    tail = trial_id.rsplit("_", 1)[-1]
    if not tail.isdigit():
        raise ValueError(f"a Tune trial id without a counter: {trial_id}")
    return int(tail) + 1


def summary_key(number: int) -> str:
    return f"{TRIALS_DIR}/{number}/{SUMMARY_FILE}"


def run_trial(config: dict[str, Any], base: dict[str, Any]) -> None:
    """The Tune trainable: the trial's spec (the job's, with its point), fitted by a TorchTrainer."""
    import ray.tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from dljobs.workloads.train.checkpoints import best_of
    from dljobs.workloads.train.trainer import build_trainer

    number = trial_number(ray.tune.get_context().get_trial_id())
    spec = read_stored_spec(trial_document(base["spec"], config[POINT_KEY]))
    context = dataclasses.replace(RunContext.from_dict(base["context"]), trial=number)
    builtin = spec.workload.kind == "model"
    if builtin:
        from dljobs.workloads.train.loop import train_builtin as train_fn
    else:
        from dljobs.workloads.train.custom import train_custom as train_fn
    trainer = build_trainer(
        train_fn,
        loop_config(spec, context, base["data"]),
        spec,
        context,
        base.get("datasets"),
        ranked=builtin,
        callbacks=[TuneReportCallback()],
        retries=0,  # Tune retries the trial (sweep.trial_retries)
    )
    started = time.perf_counter()
    result = trainer.fit()
    fit_seconds = time.perf_counter() - started
    summary = result.return_value or {}
    if summary.get("error"):
        raise WorkloadError(summary["error"])
    chosen = best_of(result.best_checkpoints or []) if builtin else None
    record = {
        "number": number,
        "point": config[POINT_KEY],
        "summary": summary,
        "checkpoint": chosen[0].path if chosen else None,
        "fit_seconds": fit_seconds,
    }
    store = open_store(context.artifacts_url or "", endpoint_url=context.s3_endpoint_url)
    store.put_bytes(summary_key(number), json.dumps(record, default=str).encode())


def read_trial_summary(context: RunContext, number: int) -> dict[str, Any] | None:
    from dljobs.storage.base import KeyNotFound

    store = open_store(context.artifacts_url or "", endpoint_url=context.s3_endpoint_url)
    try:
        return json.loads(store.get_bytes(summary_key(number)))
    except KeyNotFound:
        return None


def trial_reporting_callback(context: RunContext, metric: str, mode: str, epochs: int) -> Any:
    """A Tune callback (on the driver) that keeps the controller's trial rows live."""
    from ray.tune import Callback

    class TrialRows(Callback):
        """Rows are sent by a background thread (the latest state of each trial). Tune pickles its run
        config with the experiment, so the thread, lock and client are made on first use, not pickled.
        A later attempt of the job that restores the experiment unpickles this callback: it then reports
        with that attempt's address and token (the controller gives each attempt a new one)."""

        def __init__(self) -> None:
            self.context = context
            self.rows: dict[int, dict[str, Any]] = {}
            self.dirty: set[int] = set()
            self._started = False

        def __getstate__(self) -> dict[str, Any]:
            return {"context": self.context, "rows": self.rows, "dirty": set(self.rows), "_started": False}

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)
            current = RunContext.from_env()
            if current.job_id == self.context.job_id:
                self.context = current

        def setup(self, **info: Any) -> None:
            self._start()

        def _start(self) -> None:
            if self._started:
                return
            self._started = True
            self.reporter = Reporter(self.context.api_url, self.context.job_id, self.context.job_token)
            self.lock = threading.Lock()
            self.closing = threading.Event()
            self.thread = threading.Thread(target=self._run, name="dljobs-trials", daemon=True)
            if self.reporter.enabled:
                self.thread.start()

        def _row(self, trial: Any) -> dict[str, Any]:
            self._start()
            number = trial_number(trial.trial_id)
            row = self.rows.setdefault(
                number,
                {"number": number, "params": dict(trial.config.get(POINT_KEY, {})), "attempts": 1},
            )
            self.dirty.add(number)
            return row

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._start()
            with self.lock:
                row = self._row(trial)
                row.update(status="running", started_at=time.time())

        def on_trial_result(
            self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
        ) -> None:
            self._start()
            with self.lock:
                row = self._row(trial)
                row["status"] = "running"
                row["epochs"] = int(result.get("training_iteration") or 0)
                value = result.get(metric)
                if isinstance(value, int | float):
                    best = row.get("metric")
                    better = best is None or (value > best if mode == "max" else value < best)
                    if better:
                        row["metric"] = float(value)
                        row["best_epoch"] = result.get("epoch")
                        if result.get("checkpoint_path"):
                            row["checkpoint"] = result["checkpoint_path"]
                    elif result.get("checkpoint_path") and row.get("best_epoch") == result.get("epoch"):
                        row["checkpoint"] = result["checkpoint_path"]

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._start()
            number = trial_number(trial.trial_id)
            finished = read_trial_summary(self.context, number) is not None
            with self.lock:
                row = self._row(trial)
                row.update(status="succeeded" if finished else "stopped", finished_at=time.time())

        def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._start()
            with self.lock:
                row = self._row(trial)
                row.update(status="retrying", attempts=int(row.get("attempts", 1)) + 1)
                row["error"] = _error_of(trial)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._start()
            with self.lock:
                row = self._row(trial)
                row.update(status="failed", finished_at=time.time(), error=_error_of(trial))

        def _take(self) -> list[dict[str, Any]]:
            with self.lock:
                rows = [dict(self.rows[n]) for n in sorted(self.dirty)]
                self.dirty.clear()
                return rows

        def _run(self) -> None:
            while True:
                closing = self.closing.wait(FLUSH_INTERVAL_S)
                rows = self._take()
                if rows and not self.reporter.post_trials(rows):
                    with self.lock:
                        self.dirty.update(row["number"] for row in rows)
                if closing:
                    return

        def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
            self.close()

        def close(self) -> None:
            if not self._started or self.closing.is_set():
                return
            self.closing.set()
            if self.thread.is_alive():
                self.thread.join(timeout=10)
            rows = self._take()
            if rows:
                self.reporter.post_trials(rows)
            self.reporter.close()

    return TrialRows()


def _error_of(trial: Any) -> str | None:
    """The last line of what failed the trial (Tune keeps it in the trial's error file)."""
    path = getattr(trial, "error_file", None) or getattr(trial, "pickled_error_file", None)
    text = ""
    try:
        if path and str(path).endswith(".txt"):
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
    except OSError:
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:1000] if lines else None
