"""Identity commands: whoami, projects (quotas, members), users and tokens."""

from __future__ import annotations

import typer

OUTPUT = typer.Option("table", "-o", "--output", help="table or json.")
projects_app = typer.Typer(help="Projects, their quotas and members.", no_args_is_help=True)
users_app = typer.Typer(help="Users (admin).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Where a project's events are posted (admin).", no_args_is_help=True)


def _quota(
    max_jobs: int | None, max_cpus: float | None, max_gpus: float | None
) -> dict[str, float | int | None]:
    return {"max_jobs": max_jobs, "max_cpus": max_cpus, "max_gpus": max_gpus}


MAX_JOBS = typer.Option(None, "--max-jobs", min=0, help="Concurrent jobs.")
MAX_CPUS = typer.Option(None, "--max-cpus", min=0, help="CPUs held by running jobs.")
MAX_GPUS = typer.Option(None, "--max-gpus", min=0, help="GPUs held by running jobs.")


@projects_app.command("list")
def projects_list(output: str = OUTPUT) -> None:
    """Projects you belong to (all, for an admin)."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json

    with connection.client() as client:
        found = client.list_projects()
    if output == "json":
        print_json(found)
        return
    for project in found:
        limits = ", ".join(f"{k}={v:g}" for k, v in project.quota.items() if v is not None) or "no quota"
        console().print(f"{project.name}  ({limits})")


@projects_app.command("create")
def projects_create(
    name: str, max_jobs: int = MAX_JOBS, max_cpus: float = MAX_CPUS, max_gpus: float = MAX_GPUS
) -> None:
    """Create a project (admin)."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        project = client.create_project(name, _quota(max_jobs, max_cpus, max_gpus))
    console().print(f"created project {project.name}")


@projects_app.command("set-quota")
def projects_set_quota(
    name: str, max_jobs: int = MAX_JOBS, max_cpus: float = MAX_CPUS, max_gpus: float = MAX_GPUS
) -> None:
    """Replace a project's quota; a limit left out is removed (admin)."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        project = client.set_quota(name, _quota(max_jobs, max_cpus, max_gpus))
    console().print(f"project {project.name}: {project.quota}")


@projects_app.command("add-member")
def projects_add_member(project: str, user: str) -> None:
    """Let a user see and submit to a project (admin)."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        client.add_member(project, user)
    console().print(f"{user} is a member of {project}")


@users_app.command("create")
def users_create(
    name: str,
    admin: bool = typer.Option(False, "--admin", help="Give the user every right."),
    project: list[str] = typer.Option([], "--project", "-p", help="A project the user joins (repeatable)."),
) -> None:
    """Create a user (admin). Then: dljobs tokens create --user NAME."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        user = client.create_user(name, admin=admin, projects=project)
    console().print(f"created user {user.name} (projects: {', '.join(user.projects) or '-'})")


@users_app.command("list")
def users_list(output: str = OUTPUT) -> None:
    """Every user (admin)."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json

    with connection.client() as client:
        found = client.list_users()
    if output == "json":
        print_json(found)
        return
    for user in found:
        role = " (admin)" if user.admin else ""
        console().print(f"{user.name}{role}: {', '.join(user.projects) or '-'}")


@tokens_app.command("create")
def tokens_create(
    user: str = typer.Option(None, "--user", help="Another user's token (admin)."),
    name: str = typer.Option("cli", "--name", help="A label for the token."),
    days: int = typer.Option(90, "--days", min=0, help="Days until it expires; 0 never."),
    output: str = OUTPUT,
) -> None:
    """Create a token. Its secret is printed once: store it now."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json

    with connection.client() as client:
        created = client.create_token(user=user, name=name, expires_in_days=days or None)
    if output == "json":
        print_json(created)
        return
    expires = f"expires {created.expires_at:%Y-%m-%d}" if created.expires_at else "never expires"
    console().print(f"token {created.id} for {created.user} ({expires}):")
    typer.echo(created.token)


@tokens_app.command("list")
def tokens_list(output: str = OUTPUT) -> None:
    """Your live tokens."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json

    with connection.client() as client:
        found = client.list_tokens()
    if output == "json":
        print_json(found)
        return
    for token in found:
        expires = f"{token.expires_at:%Y-%m-%d}" if token.expires_at else "never"
        console().print(f"{token.id}  {token.name}  {token.prefix}...  expires {expires}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token at once."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        token = client.revoke_token(token_id)
    console().print(f"revoked token {token.id} ({token.name})")


@webhooks_app.command("add")
def webhooks_add(
    project: str,
    url: str,
    event: list[str] = typer.Option([], "--event", help="job.finished, sweep.finished, deployment.changed"),
    output: str = OUTPUT,
) -> None:
    """Post a project's events to URL (Slack-compatible JSON, signed with HMAC-SHA256)."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json

    with connection.client() as client:
        created = client.add_webhook(project, url, event or None)
    if output == "json":
        print_json(created)
        return
    console().print(f"webhook {created['id']} for {project}: {', '.join(created['events'])}")
    console().print("signing secret (shown once; receivers check X-Dljobs-Signature with it):")
    typer.echo(created["secret"])


@webhooks_app.command("list")
def webhooks_list(project: str, output: str = OUTPUT) -> None:
    """A project's webhooks."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json

    with connection.client() as client:
        found = client.list_webhooks(project)
    if output == "json":
        print_json(found)
        return
    for hook in found:
        console().print(f"{hook['id']}  {hook['url']}  {', '.join(hook['events'])}")


@webhooks_app.command("remove")
def webhooks_remove(project: str, webhook_id: int) -> None:
    """Stop posting to a webhook."""
    from dljobs.cli import connection
    from dljobs.cli.output import console

    with connection.client() as client:
        client.remove_webhook(project, webhook_id)
    console().print(f"removed webhook {webhook_id}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(project: str, webhook_id: int, output: str = OUTPUT) -> None:
    """The latest deliveries of a webhook: status, attempts, last error."""
    from dljobs.cli import connection
    from dljobs.cli.output import console, print_json

    with connection.client() as client:
        found = client.webhook_deliveries(project, webhook_id)
    if output == "json":
        print_json(found)
        return
    for delivery in found:
        error = f"  ({delivery['last_error']})" if delivery["last_error"] else ""
        console().print(
            f"{delivery['id']}  {delivery['event']}  {delivery['status']}  "
            f"{delivery['attempts']} attempt(s){error}"
        )


def register(app: typer.Typer) -> None:
    @app.command()
    def whoami(output: str = OUTPUT) -> None:
        """The user behind the current token, and their projects."""
        from dljobs.cli import connection
        from dljobs.cli.output import console, print_json

        with connection.client() as client:
            me = client.whoami()
        if output == "json":
            print_json(me)
            return
        console().print(f"{me.user}{' (admin)' if me.admin else ''}: {', '.join(me.projects) or '-'}")

    app.add_typer(projects_app, name="projects")
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(webhooks_app, name="webhooks")
