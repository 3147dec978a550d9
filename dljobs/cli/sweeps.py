"""A sweep's trials: `dljobs trials JOB` (best first, with the best trials' learning curves), and the
progress line `dljobs status` shows for a sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from dljobs.spec import api

OUTPUT = typer.Option("table", "-o", "--output", help="table or json.")
CURVES = 3


def progress_line(trials: api.TrialList) -> str:
    p = trials.progress
    best = f"; best {trials.metric} {p.best:.4g} (trial {p.best_trial})" if p.best is not None else ""
    return (
        f"{p.done}/{p.trials} trials done, {p.running} running, {p.stopped_early} stopped early, "
        f"{p.failed} failed{best}"
    )


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def register(app: typer.Typer) -> None:
    @app.command()
    def trials(job: str = typer.Argument(..., help="The sweep's id or name."), output: str = OUTPUT) -> None:
        """A sweep's trials, best first by its metric: parameters, status, epochs, and learning curves."""
        from dljobs.cli import connection
        from dljobs.cli.output import console, escape, new_table, print_json
        from dljobs.cli.plot import chart, sparkline

        with connection.client() as client:
            found = client.trials(job)
            curves = {
                t.number: client.metrics(found.job_id, [found.metric], trial=t.number)
                for t in found.items[:CURVES]
                if t.metric is not None
            }
        if output == "json":
            print_json(found)
            return
        out = console()
        out.print(f"[bold]sweep {found.job_id}[/]: {progress_line(found)}")
        if not found.items:
            out.print("no trials yet")
            return
        paths = sorted({path for t in found.items for path in t.params})
        columns = ("TRIAL", "STATUS", found.metric.upper(), "EPOCHS", *(p.split(".")[-1] for p in paths))
        table = new_table(escape(column) for column in columns)
        for t in found.items:
            metric = f"{t.metric:.4g}" if t.metric is not None else "-"
            table.add_row(
                str(t.number),
                t.status + (f" ({t.attempts} attempts)" if t.attempts > 1 else ""),
                metric,
                str(t.epochs),
                *(escape(_shown(t.params.get(p, "-"))) for p in paths),
            )
        out.print(table)
        for number, series in curves.items():
            values = [p.value for p in series.series.get(found.metric, [])]
            if values:
                out.print(f"\ntrial {number}: {found.metric} by epoch  {sparkline(values, 30)}")
                for row in chart(values, height=5):
                    out.print(row)
