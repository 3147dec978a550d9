"""`dljobs validate` and `dljobs schema`: checking specs without a server."""

from __future__ import annotations

from pathlib import Path

import typer

SET_HELP = "Override a field: --set training.optimizer.lr=0.01 (repeatable)."


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        spec_file: Path = typer.Argument(..., help="The job spec (YAML).", metavar="SPEC"),
        set_: list[str] = typer.Option([], "--set", help=SET_HELP),
        output: str = typer.Option("table", "-o", "--output", help="table or json (the resolved spec)."),
    ) -> None:
        """Check a spec file: every problem, with its field and line. Exit 2 if it is invalid."""
        from dljobs.cli.output import console, print_json
        from dljobs.spec.loading import load_spec_file

        spec = load_spec_file(spec_file, set_)
        if output == "json":
            print_json(spec.model_dump(mode="json"))
            return
        workload = spec.workload
        what = (
            f"model {workload.model}"
            if workload.model
            else workload.entrypoint or f"command `{workload.command}`"
        )
        console().print(
            f"[green]valid[/]: {spec_file} - job [bold]{spec.name}[/] in project {spec.project}, {what}, "
            f"{spec.resources.workers} worker(s)"
        )

    @app.command()
    def schema() -> None:
        """Print the job spec's JSON Schema (for editor completion and validation)."""
        import json

        from dljobs.spec.job import JobSpec

        document = JobSpec.model_json_schema()
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["title"] = "dljobs job spec v1"
        typer.echo(json.dumps(document, indent=2))
