"""`dljobs submit --follow`: status changes on stderr, output on stdout, the outcome as the exit code."""

from __future__ import annotations

import sys
import threading
import time

from dljobs.cli.output import err_console, escape, status_text
from dljobs.client.errors import EXIT_FAILED, EXIT_OK, DljobsError
from dljobs.client.http import Client
from dljobs.spec.status import TERMINAL, JobStatus

EVENT_POLL_SECONDS = 1.0


def follow_job(client: Client, job_id: int) -> int:
    """Follow until the job ends; returns the exit code its outcome means (0 only for SUCCEEDED)."""
    done = threading.Event()
    watcher = threading.Thread(target=_print_events, args=(client.clone(), job_id, done), daemon=True)
    watcher.start()
    try:
        for chunk in client.follow_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()
        job = client.get_job(job_id)
        while job.status not in TERMINAL:  # the log stream ended early (connection lost): poll to the end
            time.sleep(EVENT_POLL_SECONDS)
            job = client.get_job(job_id)
    finally:
        done.set()
        watcher.join(timeout=5)
    reason = f": {job.status_reason}" if job.status_reason else ""
    err_console().print(f"job {job.id} {status_text(job.status)}{escape(reason)}")
    return EXIT_OK if job.status == JobStatus.SUCCEEDED else EXIT_FAILED


def _print_events(client: Client, job_id: int, done: threading.Event) -> None:
    """Print each new status change (but the last: the caller prints the outcome) until `done`."""
    seen = 0
    with client:
        while not done.is_set():
            try:
                found = client.events(job_id)
            except DljobsError:
                found = []
            for event in found[seen:]:
                if event.to_status not in TERMINAL:
                    err_console().print(
                        f"[dim]{event.created_at:%H:%M:%S}[/] {status_text(event.to_status)} "
                        f"[dim]{escape(event.reason)}[/]"
                    )
            seen = max(seen, len(found))
            done.wait(EVENT_POLL_SECONDS)
