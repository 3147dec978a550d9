"""Training results: `dljobs metrics` (table and terminal chart) and `dljobs artifacts` (list, download)."""

from __future__ import annotations

from pathlib import Path

import typer

OUTPUT = typer.Option("table", "-o", "--output", help="table or json.")


def register(app: typer.Typer) -> None:
    @app.command()
    def metrics(
        job: str = typer.Argument(..., help="Job id or name."),
        name: list[str] = typer.Option([], "--name", help="Only these metrics (repeatable)."),
        plot: str = typer.Option("val_loss", "--plot", help="The metric to chart ('' for none)."),
        trial: int = typer.Option(None, "--trial", min=1, help="A sweep's trial (default: its best)."),
        output: str = OUTPUT,
    ) -> None:
        """A job's metrics: the latest, best and worst of each, and a chart of one over time.

        A sweep's own metrics are its model's test metrics, once it ends; `--trial N` shows a trial's, and
        a sweep with none of its own yet shows its best trial's so far."""
        from dljobs.cli import connection
        from dljobs.cli.output import console, new_table, print_json
        from dljobs.cli.plot import chart, sparkline

        note = ""
        with connection.client() as client:
            found = client.metrics(job, name or None, trial=trial)
            if trial is None and not found.series and "sweep" in client.get_job(found.job_id).spec:
                ranked = [t for t in client.trials(found.job_id).items if t.metric is not None]
                if ranked:
                    found = client.metrics(found.job_id, name or None, trial=ranked[0].number)
                    best = ranked[0].number
                    note = f"sweep {found.job_id}: trial {best}, the best so far (--trial N for another)"
        if output == "json":
            print_json(found)
            return
        out = console()
        if note:
            out.print(note)
        if not found.series:
            which = f"trial {trial} of job" if trial is not None else "job"
            out.print(f"{which} {found.job_id} has reported no metrics yet")
            return
        table = new_table(("METRIC", "LAST", "MIN", "MAX", "POINTS", "TREND"))
        for metric, points in sorted(found.series.items()):
            values = [p.value for p in points]
            table.add_row(
                metric,
                f"{values[-1]:.4g}",
                f"{min(values):.4g}",
                f"{max(values):.4g}",
                str(len(values)),
                sparkline(values, 30),
            )
        out.print(table)
        if plot and plot in found.series:
            out.print(f"\n{plot} by step")
            for row in chart([p.value for p in found.series[plot]]):
                out.print(row)

    @app.command()
    def artifacts(
        job: str = typer.Argument(..., help="Job id or name."),
        download: Path = typer.Option(None, "--download", help="Fetch every artifact into this directory."),
        output: str = OUTPUT,
    ) -> None:
        """A job's artifacts (model, TorchScript export, model card, metrics, logs) with their checksums."""
        from dljobs.cli import connection
        from dljobs.cli.output import console, print_json

        with connection.client() as client:
            found = client.artifacts(job)
            if download is not None:
                for artifact in found:
                    client.download_artifact(job, artifact, download / artifact.name)
        if output == "json":
            print_json(found)
            return
        out = console()
        if not found:
            out.print("no artifacts")
        for artifact in found:
            size = f"{artifact.size:>12,} B"
            out.print(f"{artifact.name:<28} {artifact.kind:<12} {size}  sha256 {artifact.sha256[:16]}")
        if download is not None and found:
            out.print(f"downloaded {len(found)} artifacts to {download} (checksums verified)")
