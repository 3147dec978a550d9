"""`dljobs`: submit and follow deep-learning jobs. Exit codes: 0 success, 1 the job (or the server)
failed, 2 invalid input. Heavy modules are imported inside the commands so `dljobs --help` is instant."""

from __future__ import annotations

import os
import sys

import typer

from dljobs.cli import admin, jobs, serving, specs, stack, sweeps, training

app = typer.Typer(
    name="dljobs",
    help="Distributed deep-learning jobs on Ray: one spec from training to a served model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors."),
) -> None:
    if debug:
        os.environ["DLJOBS_DEBUG"] = "1"


for module in (stack, specs, jobs, training, sweeps, serving, admin):
    module.register(app)


def main() -> None:
    debug = "--debug" in sys.argv or os.environ.get("DLJOBS_DEBUG") == "1"
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        sys.exit(_report(exc, debug))


def _report(exc: Exception, debug: bool) -> int:
    """Print one line for an error and return the exit code it means (the traceback only with --debug)."""
    from dljobs.cli.output import error
    from dljobs.client.errors import EXIT_FAILED, EXIT_INVALID, DljobsError
    from dljobs.spec.errors import SpecError, one_line

    if isinstance(exc, SpecError):
        prefix = f"{one_line(exc.source)}: " if exc.source else ""
        for problem in exc.errors:
            error(prefix + problem.render())
        return EXIT_INVALID
    if debug:
        raise exc
    if isinstance(exc, DljobsError):
        error(str(exc))
        return exc.exit_code
    error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return EXIT_FAILED


if __name__ == "__main__":
    main()
