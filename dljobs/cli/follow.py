"""`dljobs submit --follow`: follow a job to its end and exit with its outcome.

Training jobs on a terminal get a progress bar per epoch with the latest metrics (a sweep: per trial, with
its progress and best trial so far); otherwise (commands, or output piped to a file) the job's output
streams to stdout. Status changes, and a sweep's progress as it changes, go to stderr either way.
"""

from __future__ import annotations

import sys
import threading
import time

from dljobs.cli.output import err_console, escape, status_text
from dljobs.client.errors import EXIT_FAILED, EXIT_OK, DljobsError
from dljobs.client.http import Client
from dljobs.spec import api
from dljobs.spec.status import TERMINAL, JobStatus

POLL_SECONDS = 1.0
SHOWN_METRICS = ("train_loss", "val_loss", "val_accuracy", "val_f1", "val_r2", "g_loss", "d_loss")


def follow_job(client: Client, job: api.Job, *, progress: bool | None = None) -> int:
    """Follow until the job ends; returns the exit code its outcome means (0 only for SUCCEEDED)."""
    if progress is None:
        progress = not job.spec["workload"].get("command") and sys.stderr.isatty()
    final = _follow_progress(client, job) if progress else _follow_logs(client, job)
    reason = f": {final.status_reason}" if final.status_reason else ""
    err_console().print(f"job {final.id} {status_text(final.status)}{escape(reason)}")
    if final.status == JobStatus.SUCCEEDED and not final.spec["workload"].get("command"):
        _print_final_metrics(client, final.id)
    return EXIT_OK if final.status == JobStatus.SUCCEEDED else EXIT_FAILED


def _follow_logs(client: Client, job: api.Job) -> api.Job:
    job_id, done = job.id, threading.Event()
    watcher = threading.Thread(
        target=_print_events,
        args=(client.clone(), job_id, done),
        kwargs={"sweep": "sweep" in job.spec},
        daemon=True,
    )
    watcher.start()
    try:
        for chunk in client.follow_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()
        job = client.get_job(job_id)
        while job.status not in TERMINAL:  # the log stream ended early (connection lost): poll to the end
            time.sleep(POLL_SECONDS)
            job = client.get_job(job_id)
    finally:
        done.set()
        watcher.join(timeout=5)
    return job


def _follow_progress(client: Client, job: api.Job) -> api.Job:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    sweep = "sweep" in job.spec
    epochs = int(job.spec.get("training", {}).get("epochs", 1))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[metrics]}"),
    )
    seen_events = 0
    with Progress(*columns, console=err_console(), transient=False) as bar:
        task = bar.add_task("trials" if sweep else "epochs", total=epochs, metrics="")
        while True:
            job = client.get_job(job.id)
            events = client.events(job.id)
            for event in events[seen_events:]:
                if event.to_status not in TERMINAL:
                    bar.console.print(
                        f"[dim]{event.created_at:%H:%M:%S}[/] {status_text(event.to_status)} "
                        f"[dim]{escape(event.reason)}[/]"
                    )
            seen_events = len(events)
            if sweep:
                trials = client.trials(job.id)
                best = trials.progress.best
                shown = (
                    f"best {trials.metric} {best:.4g} (trial {trials.progress.best_trial})"
                    if best is not None
                    else ""
                )
                bar.update(task, total=trials.progress.trials, completed=trials.progress.done, metrics=shown)
            else:
                series = client.metrics(job.id).series
                epoch = max((p.epoch or 0 for points in series.values() for p in points), default=0)
                latest = "  ".join(
                    f"{name} {series[name][-1].value:.4g}" for name in SHOWN_METRICS if name in series
                )
                bar.update(task, completed=min(epoch, epochs), metrics=latest)
            if job.status in TERMINAL:
                return job
            time.sleep(POLL_SECONDS)


def _print_final_metrics(client: Client, job_id: int) -> None:
    series = client.metrics(job_id).series
    final = {
        name: points[-1].value
        for name, points in series.items()
        if name.startswith(("test_", "val_")) and points
    }
    if final:
        err_console().print("  ".join(f"{name} {value:.4g}" for name, value in sorted(final.items())))
        err_console().print(f"[dim]model and its card: dljobs artifacts {job_id} --download DIR[/]")


def _print_events(client: Client, job_id: int, done: threading.Event, *, sweep: bool = False) -> None:
    """Print each new status change (but the last: the caller prints the outcome), and a sweep's progress
    line whenever it changes, until `done`."""
    from dljobs.cli.sweeps import progress_line

    seen, said = 0, ""
    with client:
        while not done.is_set():
            try:
                found = client.events(job_id)
                progress = progress_line(client.trials(job_id)) if sweep else ""
            except DljobsError:
                found, progress = [], said
            for event in found[seen:]:
                if event.to_status not in TERMINAL:
                    err_console().print(
                        f"[dim]{event.created_at:%H:%M:%S}[/] {status_text(event.to_status)} "
                        f"[dim]{escape(event.reason)}[/]"
                    )
            seen = max(seen, len(found))
            if progress != said:
                err_console().print(f"sweep: {escape(progress)}")
                said = progress
            done.wait(POLL_SECONDS)
