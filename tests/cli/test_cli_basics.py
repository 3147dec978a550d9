"""The CLI as a user meets it: help, usage errors (exit 2), an unreachable server (exit 1, one line), and a
traceback only with --debug."""

from __future__ import annotations

from pathlib import Path

from tests.cli.runner import ROOT, UNREACHABLE_URL, error_lines, run_cli

COMMANDS = ("submit", "validate", "schema", "list", "status", "logs", "events", "cancel", "why", "up", "down")


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    missing = [command for command in COMMANDS if f" {command} " not in result.stdout]
    assert not missing, result.stdout


def test_an_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(["--no-such-option"], tmp_path)
    assert result.returncode == 2
    assert "No such option" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_argument_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(["validate"], tmp_path)
    assert result.returncode == 2
    assert "Missing argument" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_spec_file_is_invalid_input(tmp_path: Path) -> None:
    result = run_cli(["validate", str(tmp_path / "nowhere.yaml")], tmp_path)
    assert result.returncode == 2
    assert error_lines(result) == [f"error: {tmp_path / 'nowhere.yaml'}: spec: no such file"]


def test_a_bad_status_filter_is_refused_before_connecting(tmp_path: Path) -> None:
    result = run_cli(["list", "--status", "sleeping"], tmp_path)
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: --status: use one of QUEUED")


def test_an_unreachable_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_cli(["status", "1"], tmp_path)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot reach the dljobs server at {UNREACHABLE_URL}")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli(["--debug", "status", "1"], tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConnectionFailed: cannot reach the dljobs server" in result.stderr


def test_spec_errors_stay_one_line_each_even_with_debug(tmp_path: Path) -> None:
    """A spec mistake is the user's, never a crash: --debug adds no traceback to it."""
    spec = tmp_path / "job.yaml"
    spec.write_text("name: Bad Name\nworkload:\n  command: echo hi\nresources:\n  workers: 0\n")
    result = run_cli(["--debug", "validate", str(spec)], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = error_lines(result)
    assert all(line.startswith(f"error: {spec}: ") for line in lines)
    named = [line.removeprefix(f"error: {spec}: ").split(":")[0] for line in lines]
    assert named == ["name (line 1)", "resources.workers (line 5)"]


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    """`dljobs --help` stays instant: no HTTP client, pydantic, database, Ray or torch is imported for it."""
    import subprocess
    import sys

    probe = (
        "import sys; sys.argv = ['dljobs', '--help']\n"
        "from dljobs.cli.main import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('httpx', 'pydantic', 'sqlalchemy', 'fastapi', 'ray', 'torch', 'yaml', 'boto3')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert "HEAVY []" in result.stderr, result.stderr


def test_server_migrate_only_creates_the_schema(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "db.sqlite"
    result = run_cli(
        ["server", "--migrate-only"], tmp_path, DLJOBS_DATABASE__URL=f"sqlite+aiosqlite:///{database}"
    )
    assert result.returncode == 0, result.stderr
    tables = {
        row[0]
        for row in sqlite3.connect(database).execute("select name from sqlite_master where type='table'")
    }
    assert {"jobs", "job_events", "api_tokens", "projects", "users", "alembic_version"} <= tables
