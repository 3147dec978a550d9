"""Serving commands: `models list|show|promote`, `deploy`, `endpoints list|show|promote|rollback|delete`
and `predict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

OUTPUT = typer.Option("table", "-o", "--output", help="table or json.")
PROJECT = typer.Option(None, "--project", "-p", help="The project (when a name is in several).")
models_app = typer.Typer(help="The model registry: versions from jobs, with stages.", no_args_is_help=True)
endpoints_app = typer.Typer(help="Served models: status, figures, rollouts.", no_args_is_help=True)


@models_app.command("list")
def models_list(project: str = PROJECT, output: str = OUTPUT) -> None:
    """Registered models with their latest and production versions."""
    from dljobs.cli import connection
    from dljobs.cli.output import ago, console, new_table, print_json

    with connection.client() as client:
        found = client.list_models(project)
    if output == "json":
        print_json(found)
        return
    table = new_table(("NAME", "PROJECT", "LATEST", "PRODUCTION", "CREATED"))
    for model in found:
        table.add_row(
            model.name,
            model.project,
            str(model.latest_version or "-"),
            str(model.production_version or "-"),
            ago(model.created_at),
        )
    console().print(table)


@models_app.command("show")
def models_show(
    model: str = typer.Argument(..., help="NAME, or NAME:VERSION for one version with its card."),
    project: str = PROJECT,
    output: str = OUTPUT,
) -> None:
    """A model's versions (metrics, stage, lineage), or one version with its model card."""
    from dljobs.cli import connection
    from dljobs.cli.output import ago, console, new_table, print_json

    name, _, version = model.partition(":")
    with connection.client() as client:
        if version:
            one = client.model_version(name, version, project)
            if output == "json":
                print_json(one)
                return
            _print_version(one)
            return
        found = client.show_model(name, project)
    if output == "json":
        print_json(found)
        return
    console().print(
        f"[bold]{found.name}[/] ({found.project}){' - ' + found.description if found.description else ''}"
    )
    table = new_table(("VERSION", "STAGE", "JOB", "METRICS", "DATA", "CREATED"), fold=("METRICS",))
    for v in found.versions:
        table.add_row(
            str(v.version),
            v.stage,
            str(v.job_id),
            _metrics_text(v.metrics),
            str(v.lineage.get("data_fingerprint") or "-")[:12],
            ago(v.created_at),
        )
    console().print(table)


def _metrics_text(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if isinstance(v, int | float))[:120]


def _print_version(version: Any) -> None:
    from dljobs.cli.output import console

    card = version.card or {}
    lines = [
        f"[bold]{version.model}:{version.version}[/] ({version.project})  stage: {version.stage}",
        f"task: {version.task or '-'}   input: {card.get('input')}",
        f"from job {version.job_id}   data {version.lineage.get('data_fingerprint') or '-'}   "
        f"code {version.lineage.get('code_hash') or '-'}",
        f"metrics: {_metrics_text(version.metrics) or '-'}",
        f"artifacts: {version.artifacts_uri}",
    ]
    for line in lines:
        console().print(line)


@models_app.command("promote")
def models_promote(
    model: str = typer.Argument(..., help="NAME:VERSION"),
    stage: str = typer.Option("production", "--stage", "-s", help="none, staging, production or archived."),
    project: str = PROJECT,
    output: str = OUTPUT,
) -> None:
    """Move a version to a stage; promoting to production archives the previous production version."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json
    from dljobs.client.errors import InvalidInput

    name, _, version = model.partition(":")
    if not version:
        raise InvalidInput("model: give NAME:VERSION, such as digits:3")
    with connection.client() as client:
        result = client.promote_model(name, version, stage, project)
    if output == "json":
        print_json(result)
        return
    console().print(f"{result.model}:{result.version} is now [bold]{result.stage}[/]")


@endpoints_app.command("list")
def endpoints_list(project: str = PROJECT, output: str = OUTPUT) -> None:
    """Endpoints with the versions they serve."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, new_table, print_json

    with connection.client() as client:
        found = client.list_endpoints(project)
    if output == "json":
        print_json(found)
        return
    table = new_table(
        ("NAME", "PROJECT", "STATUS", "SERVING", "CANARY", "REPLICAS", "REASON"), fold=("REASON",)
    )
    for e in found:
        canary = f"{e.canary.model}:{e.canary.version} ({e.canary_percent:g}%)" if e.canary else "-"
        table.add_row(
            e.name,
            e.project,
            e.status,
            f"{e.stable.model}:{e.stable.version}" if e.stable else "-",
            canary,
            str(e.config.get("replicas", "1")),
            (e.status_reason or "")[:80],
        )
    console().print(table)


@endpoints_app.command("show")
def endpoints_show(
    name: str = typer.Argument(..., help="The endpoint."),
    window: int = typer.Option(300, "--window", min=10, help="Seconds of figures to sum."),
    output: str = OUTPUT,
) -> None:
    """An endpoint's versions, rollout events and figures: requests, errors, latency, predictions, drift."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json

    with connection.client() as client:
        endpoint = client.get_endpoint(name)
        stats = client.endpoint_stats(name, window)
    if output == "json":
        print_json({"endpoint": endpoint.model_dump(mode="json"), "stats": stats.model_dump(mode="json")})
        return
    out = console()
    serving = f"{endpoint.stable.model}:{endpoint.stable.version}" if endpoint.stable else "-"
    out.print(
        f"[bold]{endpoint.name}[/] ({endpoint.project})  {endpoint.status}: {endpoint.status_reason or ''}"
    )
    out.print(f"serving {serving}; POST {endpoint.url}")
    if endpoint.canary:
        out.print(f"canary {endpoint.canary.model}:{endpoint.canary.version} at {endpoint.canary_percent:g}%")
    for v in stats.versions:
        latency = ", ".join(f"{k} {val:g} ms" for k, val in v.latency_ms.items() if val is not None)
        out.print(
            f"  v{v.version}: {v.requests} requests, {v.errors} errors ({v.error_rate:.1%}), "
            f"{v.rejected} rejected; {latency or 'no latency yet'}"
        )
        if v.predictions:
            top = sorted(v.predictions.items(), key=lambda kv: -kv[1])[:5]
            out.print("    predictions: " + ", ".join(f"{k} {share:.0%}" for k, share in top))
        if v.drift_psi_max is not None:
            verdict = (
                "stable" if v.drift_psi_max < 0.1 else "moderate" if v.drift_psi_max < 0.25 else "drifted"
            )
            out.print(f"    input drift (PSI, worst feature): {v.drift_psi_max:.3f} ({verdict})")
    for event in endpoint.events[-10:]:
        out.print(f"  [dim]{event.created_at:%Y-%m-%d %H:%M:%S}[/] {event.kind}: {event.message}")


@endpoints_app.command("promote")
def endpoints_promote(name: str = typer.Argument(..., help="The endpoint.")) -> None:
    """The canary takes all traffic."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        endpoint = client.promote_canary(name)
    serving = f"{endpoint.stable.model}:{endpoint.stable.version}" if endpoint.stable else "-"
    console().print(f"{name} now serves {serving}")


@endpoints_app.command("rollback")
def endpoints_rollback(name: str = typer.Argument(..., help="The endpoint.")) -> None:
    """Drop the canary; the stable version keeps all traffic."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        client.rollback_canary(name)
    console().print(f"{name}: canary rolled back")


@endpoints_app.command("delete")
def endpoints_delete(name: str = typer.Argument(..., help="The endpoint.")) -> None:
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        client.delete_endpoint(name)
    console().print(f"{name}: deleting")


@endpoints_app.command("key")
def endpoints_key(
    name: str = typer.Argument(..., help="The endpoint."),
    key_name: str = typer.Option("default", "--name", help="What the key is for."),
) -> None:
    """A new API key for the endpoint (shown once)."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        key = client.create_endpoint_key(name, key_name)
    console().print(key.key)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.add_typer(endpoints_app, name="endpoints")

    @app.command()
    def deploy(
        source: str = typer.Argument(..., help="MODEL[:VERSION] from the registry, or a job id (a number)."),
        name: str = typer.Option(..., "--name", help="The endpoint's name."),
        replicas: str = typer.Option(None, "--replicas", help="N or MIN..MAX (autoscaled)."),
        canary: float = typer.Option(
            0.0, "--canary", min=0, max=99.9, help="Percent of traffic for the new version."
        ),
        rate_limit: float = typer.Option(None, "--rate-limit", help="Requests per second, all replicas."),
        num_cpus: float = typer.Option(None, "--num-cpus", help="CPUs per replica."),
        project: str = PROJECT,
        output: str = OUTPUT,
    ) -> None:
        """Serve a model version (or a job's model) at an endpoint, or roll it out on an existing one."""
        from dljobs.cli import connection
        from dljobs.cli.output import console, print_json
        from dljobs.client.errors import InvalidInput
        from dljobs.spec.serving import parse_replicas

        config: dict[str, Any] = {}
        if replicas is not None:
            try:
                parse_replicas(replicas)
            except ValueError as exc:
                raise InvalidInput(f"--replicas: {exc}") from None
            config["replicas"] = replicas
        if rate_limit is not None:
            config["rate_limit"] = rate_limit
        if num_cpus is not None:
            config["num_cpus"] = num_cpus
        body: dict[str, Any] = {"name": name, "canary": canary, "config": config, "project": project}
        body["job" if source.isdigit() else "model"] = source
        with connection.client() as client:
            endpoint = client.deploy(body)
        if output == "json":
            print_json(endpoint)
            return
        console().print(
            f"endpoint [bold]{endpoint.name}[/]: {endpoint.status} ({endpoint.status_reason or ''})"
        )
        console().print(f"POST {endpoint.url}")
        if endpoint.key is not None:
            console().print(f"API key (shown once): {endpoint.key.key}")

    @app.command()
    def predict(
        name: str = typer.Argument(..., help="The endpoint."),
        input_file: Path = typer.Option(
            ..., "--input", "-i", help='JSON: {"inputs": [...]} or a list of inputs.'
        ),
        key: str = typer.Option(
            None, "--key", envvar="DLJOBS_ENDPOINT_KEY", help="An endpoint key (default: your token)."
        ),
    ) -> None:
        """Call an endpoint with inputs from a file; prints the predictions as JSON."""
        from dljobs.cli import connection
        from dljobs.cli.output import print_json
        from dljobs.client.errors import InvalidInput

        try:
            document = json.loads(input_file.read_text())
        except OSError as exc:
            raise InvalidInput(f"--input: cannot read {input_file}: {exc.strerror}") from None
        except ValueError as exc:
            raise InvalidInput(f"--input: {input_file} is not JSON: {exc}") from None
        inputs = document.get("inputs") if isinstance(document, dict) else document
        if not isinstance(inputs, list) or not inputs:
            raise InvalidInput(
                f'--input: {input_file} holds no inputs: expected {{"inputs": [...]}} or a list'
            )
        with connection.client() as client:
            print_json(client.predict(name, inputs, key))
