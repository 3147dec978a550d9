"""`dljobs up`, `down`, `server`, `login`, `logout`: where the controller runs and how to reach it."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        port: int = typer.Option(8765, help="Port of the local API (another is picked if taken)."),
        wait: bool = typer.Option(True, help="Wait until the local Ray head is ready."),
    ) -> None:
        """Start the local stack: controller, SQLite, a Ray head, artifacts on disk (in DLJOBS_HOME)."""
        import time

        from dljobs.cli import local_stack
        from dljobs.cli.output import console
        from dljobs.client.http import Client
        from dljobs.spec.local import TOKEN_FILE, dljobs_home

        home = dljobs_home()
        existing = local_stack.running(home)
        server = existing or local_stack.start(home, port)
        if wait:
            with (
                Client(server.url, server.token()) as client,
                console().status("waiting for the local Ray head"),
            ):
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline and client.ready().checks.get("ray") != "ok":
                    time.sleep(0.5)
                ray = client.ready().checks.get("ray")
        else:
            ray = "starting"
        state = "already running" if existing else "started"
        console().print(f"dljobs {state} at [bold]{server.url}[/] (home {home}; Ray: {ray})")
        console().print(f"dashboard: {server.url}/ui/ (log in with the token in {home / TOKEN_FILE})")

    @app.command()
    def down() -> None:
        """Stop the local stack and everything it started (the controller and its Ray head)."""
        from dljobs.cli import local_stack
        from dljobs.cli.output import console

        stopped = local_stack.stop()
        console().print("local dljobs stopped" if stopped else "local dljobs was not running")

    @app.command()
    def server(
        host: str = typer.Option(
            None, help="Listen address (default from DLJOBS_SERVER__HOST or 127.0.0.1)."
        ),
        port: int = typer.Option(None, help="Port (default from DLJOBS_SERVER__PORT or 8765)."),
        migrate_only: bool = typer.Option(False, "--migrate-only", help="Migrate the database, then exit."),
        log_level: str = typer.Option("info", help="debug, info, warning or error."),
    ) -> None:
        """Run the controller in the foreground (what a cluster deployment runs). Settings: DLJOBS_* env."""
        import sys

        args = ["--log-level", log_level]
        if host:
            args += ["--host", host]
        if port is not None:
            args += ["--port", str(port)]
        if migrate_only:
            args.append("--migrate-only")
        import os

        # the controller is its own program: the CLI does not import it
        os.execv(sys.executable, [sys.executable, "-m", "dljobs.controller", *args])

    @app.command()
    def login(
        url: str = typer.Argument(..., help="The controller's URL, e.g. https://dljobs.example.com"),
        token: str = typer.Option(
            ..., envvar="DLJOBS_TOKEN", prompt=True, hide_input=True, help="An API token."
        ),
        name: str = typer.Option("default", help="Name of this saved context."),
    ) -> None:
        """Check a token against a controller and save it as the current context (file mode 0600)."""
        from dljobs.cli.connection import save_context
        from dljobs.cli.output import console
        from dljobs.client.http import Client

        with Client(url, token) as client:
            me = client.whoami()
        path = save_context(name, url, token)
        console().print(
            f"logged in to {url} as [bold]{me.user}[/] (projects: {', '.join(me.projects) or '-'}); "
            f"saved to {path}"
        )

    @app.command()
    def logout(
        name: str = typer.Option(None, help="The context to forget (default: the current one)."),
    ) -> None:
        """Forget a saved context."""
        from dljobs.cli.connection import remove_context
        from dljobs.cli.output import console

        removed = remove_context(name)
        console().print(f"forgot context {removed}" if removed else "no such context")
