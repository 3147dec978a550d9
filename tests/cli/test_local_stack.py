"""The CLI against the embedded default, as a user runs it: the first submit starts the local stack
(controller, SQLite, its own Ray head), commands print for people or JSON for scripts, exit codes mean
what they say, and `dljobs down` stops everything it started."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dljobs.processes import alive

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello-command" / "job.yaml"


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DLJOBS_")}
        self.env["DLJOBS_HOME"] = str(home)
        self.env["DLJOBS_RAY__LOCAL_NUM_CPUS"] = "2"

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dljobs.cli.main", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=ROOT,
            timeout=900,
        )

    def json(self, *args: str) -> object:
        result = self(*args, "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def write_spec(path: Path, name: str, command: str, **extra: str) -> Path:
    lines = [
        f"name: {name}",
        "workload:",
        f"  command: {json.dumps(command)}",
        *[f"{k}: {v}" for k, v in extra.items()],
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    runner = Cli(tmp_path_factory.mktemp("home"))
    # the README's flow: no server configured, the first submit starts the local stack
    first = runner("submit", str(HELLO), "--follow")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Starting the local dljobs stack" in first.stderr
    assert "hello from dljobs job 1" in first.stdout and "done" in first.stdout
    assert "job 1 SUCCEEDED" in first.stderr
    try:
        yield runner
    finally:
        runner("down")


def test_the_local_token_is_readable_by_its_owner_only(cli: Cli) -> None:
    mode = stat.S_IMODE((cli.home / "token").stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(cli.home.stat().st_mode) == 0o700


def test_read_commands_print_json_for_scripts(cli: Cli) -> None:
    listed = cli.json("list")
    assert [j["name"] for j in listed["items"]] == ["hello-command"]  # type: ignore[index]
    job = cli.json("status", "1")
    assert job["status"] == "SUCCEEDED" and job["spec"]["workload"]["code"].startswith("bundle://")  # type: ignore[index]
    events = cli.json("events", "hello-command")
    assert events[0]["to_status"] == "QUEUED"  # type: ignore[index]
    assert cli.json("whoami") == {"user": "admin", "admin": True, "projects": ["default"]}
    table = cli("list")
    assert table.returncode == 0 and "hello-command" in table.stdout and "SUCCEEDED" in table.stdout
    logs = cli("logs", "1")
    assert "hello from dljobs job 1" in logs.stdout


def test_a_failed_job_exits_1_and_says_why(cli: Cli, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "fail.yaml", "fails", "echo 'dljobs-error: training.epochs: too many'; exit 1"
    )
    result = cli("submit", str(spec), "--follow")
    assert result.returncode == 1
    assert "FAILED: training.epochs: too many" in result.stderr


def test_set_overrides_and_dry_run(cli: Cli, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "dry.yaml", "dry", "echo hi")
    dry = cli("submit", str(spec), "--dry-run", "--set", "timeout=5m", "-o", "json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["spec"]["timeout"] == "5m"
    assert [j["name"] for j in cli.json("list", "--name", "dry")["items"]] == []  # type: ignore[index]


def test_cancel_and_why(cli: Cli, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "long.yaml", "long", "sleep 300", resources="{cpus_per_worker: 2}")
    submitted = cli.json("submit", str(spec))
    job_id = str(submitted["id"])  # type: ignore[index]
    waiting = write_spec(tmp_path / "waits.yaml", "waits", "echo later", resources="{cpus_per_worker: 2}")
    queued_id = str(cli.json("submit", str(waiting))["id"])  # type: ignore[index]
    while cli.json("status", job_id)["status"] != "RUNNING":  # type: ignore[index]
        time.sleep(0.5)
    why = cli("why", queued_id)
    assert why.returncode == 0 and "position 1" in why.stdout and "capacity" in why.stdout
    cancelled = cli("cancel", job_id)
    assert cancelled.returncode == 0 and "CANCELLING" in cancelled.stdout
    while cli.json("status", job_id)["status"] != "CANCELLED":  # type: ignore[index]
        time.sleep(0.5)
    assert cli("cancel", job_id).returncode == 1  # already finished
    followed = cli("logs", queued_id, "--follow")
    assert "later" in followed.stdout


def test_errors_are_one_line_with_exit_codes(cli: Cli) -> None:
    missing = cli("status", "999")
    assert missing.returncode == 2 and missing.stderr.strip() == "error: job 999 not found"
    bad_status = cli("list", "--status", "NOPE")
    assert bad_status.returncode == 2 and "Traceback" not in bad_status.stderr


def test_login_saves_a_context_and_env_wins(cli: Cli, tmp_path: Path) -> None:
    server = json.loads((cli.home / "server.json").read_text())
    token = (cli.home / "token").read_text().strip()
    home = tmp_path / "other-home"
    other = Cli(home)
    login = other("login", server["url"], "--token", token, "--name", "laptop")
    assert login.returncode == 0 and "logged in" in login.stdout
    assert stat.S_IMODE((home / "config.json").stat().st_mode) == 0o600
    assert other.json("whoami")["user"] == "admin"  # type: ignore[index]
    wrong = other("whoami", env={"DLJOBS_URL": server["url"], "DLJOBS_TOKEN": "dlj_wrong"})
    assert wrong.returncode == 1 and "invalid token" in wrong.stderr
    assert other("login", server["url"], "--token", "dlj_wrong").returncode == 1


def test_down_stops_everything_it_started(tmp_path_factory: pytest.TempPathFactory) -> None:
    runner = Cli(tmp_path_factory.mktemp("short-lived"))
    up = runner("up")
    assert up.returncode == 0 and "Ray: ok" in up.stdout
    server = json.loads((runner.home / "server.json").read_text())
    server_pid = server["pid"]
    ray_pid = int((runner.home / "ray-head.pid").read_text())
    assert alive(server_pid) and alive(ray_pid)
    again = runner("up")
    assert "already running" in again.stdout and f"dashboard: {server['url']}/ui/" in again.stdout
    down = runner("down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not alive(server_pid) and not alive(ray_pid)
    after = runner("status", "1")
    assert after.returncode == 1 and "no dljobs server" in after.stderr
