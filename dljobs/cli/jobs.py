"""Job commands: submit, list, status, logs, events, cancel, why."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dljobs.cli.specs import SET_HELP

if TYPE_CHECKING:
    from dljobs.client.bundles import Bundle
    from dljobs.client.http import Client
    from dljobs.spec.job import JobSpec

OUTPUT = typer.Option("table", "-o", "--output", help="table or json.")
MAX_BUNDLE_ENV = "DLJOBS_MAX_BUNDLE_BYTES"


def max_bundle_bytes() -> int:
    """The cap on a `code:` directory's size: DLJOBS_MAX_BUNDLE_BYTES (bytes) when set, else the client's
    default (100 MiB). The server has its own cap on uploads; this one fails fast, before anything is sent."""
    from dljobs.client.bundles import DEFAULT_MAX_BYTES
    from dljobs.client.errors import InvalidInput

    raw = os.environ.get(MAX_BUNDLE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise InvalidInput(f"{MAX_BUNDLE_ENV}={raw!r}: expected a positive number of bytes")
    return int(raw)


def _bundle_code(spec: JobSpec, spec_file: Path) -> tuple[Bundle, Path] | None:
    """Zip `workload.code` (relative to the spec file); done before any connection, so that a directory
    that is missing or too large fails at once (exit 2) and never starts a server."""
    from dljobs.client.bundles import build_bundle
    from dljobs.spec.job import BUNDLE_PREFIX

    code = spec.workload.code
    if code is None or code.startswith(BUNDLE_PREFIX):
        return None
    directory = Path(code).expanduser()
    if not directory.is_absolute():
        directory = (spec_file.parent / directory).resolve()
    return build_bundle(directory, max_bytes=max_bundle_bytes()), directory


def _upload_code(client: Client, spec: JobSpec, bundled: tuple[Bundle, Path] | None) -> JobSpec:
    """Upload the bundle once (the server keeps each by its SHA-256) and point the spec at it."""
    from dljobs.cli.output import note
    from dljobs.spec.job import BUNDLE_PREFIX

    if bundled is None:
        return spec
    bundle, directory = bundled
    if not client.bundle_exists(bundle.sha256):
        note(f"uploading {directory} ({bundle.files} files, {len(bundle.data) / 1024:.0f} KiB zipped)")
        client.upload_bundle(bundle.sha256, bundle.data)
    workload = spec.workload.model_copy(update={"code": BUNDLE_PREFIX + bundle.sha256})
    return spec.model_copy(update={"workload": workload})


def register(app: typer.Typer) -> None:
    @app.command()
    def submit(
        spec_file: Path = typer.Argument(..., help="The job spec (YAML).", metavar="SPEC"),
        set_: list[str] = typer.Option([], "--set", help=SET_HELP),
        follow: bool = typer.Option(
            False, "--follow", "-f", help="Stream events and logs; exit with the outcome."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Validate and resolve, but submit nothing."),
        output: str = OUTPUT,
    ) -> None:
        """Submit a job. With no server configured, the local stack is started first."""
        from dljobs.cli import connection
        from dljobs.cli.follow import follow_job
        from dljobs.cli.output import console, print_json, status_text
        from dljobs.spec.loading import load_spec_file

        spec = load_spec_file(spec_file, set_)
        bundled = _bundle_code(spec, spec_file)
        if dry_run and connection.configured_target() is None and connection.local_running() is None:
            # no server to ask: the local checks are all there is
            if output == "json":
                print_json(spec.model_dump(mode="json"))
            else:
                console().print(f"[green]valid[/]: {spec_file} (dry run: nothing submitted)")
            return
        with connection.client(start_local=True) as client:
            spec = _upload_code(client, spec, bundled)
            job = client.submit(spec.model_dump(mode="json", exclude_unset=False), dry_run=dry_run)
            if output == "json" and not follow:
                print_json(job)
                return
            if dry_run:
                console().print(
                    f"[green]valid[/]: would submit job [bold]{job.name}[/] to project {job.project}"
                )
                return
            state = status_text(job.status)
            console().print(f"submitted job [bold]{job.id}[/] ({job.name}) to project {job.project}: {state}")
            if follow:
                raise typer.Exit(follow_job(client, job, progress=False if logs else None))

    @app.command("list")
    def list_(
        status: list[str] = typer.Option([], "--status", "-s", help="Filter by status (repeatable)."),
        project: str = typer.Option(None, "--project", "-p"),
        name: str = typer.Option(None, "--name"),
        limit: int = typer.Option(20, "--limit", "-n", min=1, max=500),
        cursor: str = typer.Option(None, "--cursor", help="Continue after a previous page."),
        output: str = OUTPUT,
    ) -> None:
        """List jobs, newest first."""
        from dljobs.cli import connection
        from dljobs.cli.output import ago, console, duration, new_table, print_json, status_text
        from dljobs.client.errors import InvalidInput
        from dljobs.spec.status import JobStatus

        try:
            statuses = [JobStatus(s.upper()) for part in status for s in part.split(",") if s]
        except ValueError:
            raise InvalidInput(f"--status: use one of {', '.join(JobStatus)}") from None
        with connection.client() as client:
            page = client.list_jobs(status=statuses, project=project, name=name, limit=limit, cursor=cursor)
        if output == "json":
            print_json(page)
            return
        table = new_table(
            ("ID", "NAME", "PROJECT", "STATUS", "SUBMITTED", "DURATION", "REASON"), fold=("REASON",)
        )
        for job in page.items:
            table.add_row(
                str(job.id),
                job.name,
                job.project,
                status_text(job.status),
                ago(job.created_at),
                duration(job.started_at, job.finished_at),
                (job.status_reason or "")[:80],
            )
        console().print(table)
        if page.next_cursor:
            console().print(f"[dim]more: dljobs list --cursor {page.next_cursor}[/]")

    @app.command()
    def status(job: str = typer.Argument(..., help="Job id or name."), output: str = OUTPUT) -> None:
        """A job's status and the reason for it."""
        from dljobs.cli import connection
        from dljobs.cli.output import ago, console, duration, print_json, status_text

        with connection.client() as client:
            found = client.get_job(job)
            why = client.why(found.id) if found.status in ("QUEUED", "RETRYING") else None
            trials = client.trials(found.id) if found.kind == "sweep" else None
        if output == "json":
            data = found.model_dump(mode="json")
            if why is not None:
                data["queue"] = why.model_dump(mode="json")
            if trials is not None:
                data["sweep"] = trials.progress.model_dump(mode="json")
            print_json(data)
            return
        out = console()
        out.print(
            f"[bold]job {found.id}[/] {found.name} (project {found.project}, priority {found.priority})"
        )
        out.print(f"  status:    {status_text(found.status)}")
        if found.status_reason:
            out.print(f"  reason:    {found.status_reason}")
        if why is not None:
            place = f"position {why.position}" if why.position else "waiting"
            out.print(f"  queue:     {place}: {why.message}")
        out.print(f"  attempt:   {found.attempt} (retries allowed: {found.retries})")
        out.print(f"  submitted: {ago(found.created_at)} by {found.submitted_by}")
        if found.started_at:
            out.print(f"  run time:  {duration(found.started_at, found.finished_at)}")
        if trials is not None:
            from dljobs.cli.sweeps import progress_line

            out.print(f"  sweep:     {progress_line(trials)}")

    @app.command()
    def logs(
        job: str = typer.Argument(..., help="Job id or name."),
        follow: bool = typer.Option(False, "--follow", "-f", help="Stream until the job ends."),
        attempt: int = typer.Option(
            None, "--attempt", min=1, help="An earlier attempt (default: the latest)."
        ),
    ) -> None:
        """A job's output."""
        import sys

        from dljobs.cli import connection

        with connection.client() as client:
            if follow:
                for chunk in client.follow_logs(job, attempt):
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
            else:
                sys.stdout.write(client.logs(job, attempt))

    @app.command()
    def events(job: str = typer.Argument(..., help="Job id or name."), output: str = OUTPUT) -> None:
        """Every status change of a job, with its reason."""
        from dljobs.cli import connection
        from dljobs.cli.output import console, print_json, status_text

        with connection.client() as client:
            found = client.events(job)
        if output == "json":
            print_json(found)
            return
        for event in found:
            when = event.created_at.strftime("%Y-%m-%d %H:%M:%S")
            source = f"{event.from_status} -> " if event.from_status else ""
            console().print(f"{when}  {source}{status_text(event.to_status)}  {event.reason}")

    @app.command()
    def cancel(job: str = typer.Argument(..., help="Job id or name.")) -> None:
        """Cancel a job: a waiting job ends at once, a running one is stopped on Ray."""
        from dljobs.cli import connection
        from dljobs.cli.output import console, status_text

        with connection.client() as client:
            found = client.cancel(job)
        console().print(f"job {found.id}: {status_text(found.status)}")

    @app.command()
    def why(job: str = typer.Argument(..., help="Job id or name."), output: str = OUTPUT) -> None:
        """Why a job is waiting: its place in the queue and what holds it."""
        from dljobs.cli import connection
        from dljobs.cli.output import console, print_json, status_text

        with connection.client() as client:
            answer = client.why(job)
        if output == "json":
            print_json(answer)
            return
        out = console()
        if answer.blocker == "not_waiting":
            out.print(f"job {answer.job_id} is not waiting ({status_text(answer.status)}): {answer.message}")
            return
        out.print(
            f"job {answer.job_id} is {status_text(answer.status)}, position {answer.position} in the queue"
        )
        if answer.ahead:
            shown = ", ".join(str(j) for j in answer.ahead[:10]) + (" ..." if len(answer.ahead) > 10 else "")
            out.print(f"  ahead of it: {shown}")
        out.print(f"  held by {answer.blocker}: {answer.message}")
