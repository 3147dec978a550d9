"""Training overhead, part (b): time from `dljobs submit` to the first reported step, against a raw
`ray job submit` of an equivalent TorchTrainer script (bench/plain_torchtrainer.py) on the same warm cluster.

One Ray head (2 CPUs) and one controller process (SQLite, a local artifact directory) are started and
warmed with one job of each kind, then each round runs both, in alternating order, one at a time:

- dljobs: `dljobs submit spec.yaml` (the CLI, as a user runs it) of the built-in `mlp` on digits, two
  workers of one CPU, one epoch; the first report is the first metric point's timestamp, taken in the
  worker when it reports (the controller's copy of it is asked for until it arrives).
- raw: `ray job submit --no-wait -- python bench/plain_torchtrainer.py`, the same model, data split, batch
  size, workers, epoch, validation and checkpoint; the first report is the time its rank 0 writes to a file
  right after `ray.train.report` returns.

Both clocks start just before the command is run and both first reports are read off the same machine's
clock. The median of the per-round ratios is printed beside the target (<= 1.1), with where dljobs' time
goes (CLI, queue to launch, launch to Ray running, to first report).

    python -m bench.submit_to_first_step [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dljobs.client.http import Client  # noqa: E402
from dljobs.controller.db.migrate import upgrade  # noqa: E402
from dljobs.controller.ray_head import LocalRayHead, ray_executable  # noqa: E402
from dljobs.spec.api import Job  # noqa: E402
from tests.support.controller_process import ControllerProcess, controller_env  # noqa: E402

TARGET = 1.1
DLJOBS_CLI = shutil.which("dljobs", path=os.path.dirname(sys.executable)) or "dljobs"
TOKEN = "dlj_bench-admin-token-0000000000000000000000"
# A safeguard against a hang, not a measurement.
WAIT_LIMIT_S = 300.0
SPEC = {
    "name": "first-step",
    "workload": {"model": "mlp", "params": {"hidden": [128, 64], "dropout": 0.2}},
    "data": {"source": "builtin://digits", "validation_split": 0.2},
    "training": {"epochs": 1, "batch_size": 64, "optimizer": {"name": "adamw", "lr": 1.0e-3}, "seed": 0},
    "resources": {"workers": 2, "cpus_per_worker": 1},
}


@dataclass
class DljobsRun:
    first_report_s: float
    cli_s: float  # until `dljobs submit` exits
    launched_s: float  # until the controller's launch (the job leaves the queue)
    running_s: float  # until the controller sees it running on Ray


def _wait(predicate, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_LIMIT_S
    while (value := predicate()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.05)
    return value


def _event_time(client: Client, job_id: int, status: str, began: float) -> float:
    for event in client.events(job_id):
        if event.to_status.value == status:
            return event.created_at.timestamp() - began
    raise RuntimeError(f"job {job_id} has no {status} event")


def run_dljobs(client: Client, spec_file: Path, env: dict[str, str]) -> DljobsRun:
    began = time.time()
    out = subprocess.run(
        [DLJOBS_CLI, "submit", str(spec_file), "-o", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    cli_s = time.time() - began
    job_id = json.loads(out.stdout)["id"]

    def first_point() -> float | None:
        series = client.metrics(job_id).series
        times = [p.reported_at.timestamp() for points in series.values() for p in points]
        return min(times) if times else None

    first = _wait(first_point, f"the first metric of job {job_id}")

    def ended() -> Job | None:
        job = client.get_job(job_id)
        return job if job.status.terminal else None

    job = _wait(ended, f"job {job_id} to end")
    if job.status.value != "SUCCEEDED":
        raise RuntimeError(f"job {job_id} ended {job.status.value}: {job.status_reason}")
    return DljobsRun(
        first_report_s=first - began,
        cli_s=cli_s,
        launched_s=_event_time(client, job_id, "STARTING", began),
        running_s=_event_time(client, job_id, "RUNNING", began),
    )


def run_raw(head: LocalRayHead, work: Path, n: int) -> float:
    report_file = work / f"raw-{n}.first"
    env = {**os.environ, **head.env(), "RAY_ADDRESS": head.dashboard_url}
    began = time.time()
    submission = f"bench-raw-{uuid.uuid4().hex[:12]}"
    subprocess.run(
        [
            ray_executable(),
            "job",
            "submit",
            "--no-wait",
            "--submission-id",
            submission,
            "--",
            sys.executable,
            str(ROOT / "bench" / "plain_torchtrainer.py"),
            "--first-report-file",
            str(report_file),
            "--storage",
            str(work / "raw-runs"),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )

    def first_report() -> float | None:
        written = report_file.read_text() if report_file.exists() else ""
        return float(written) if written else None

    first = _wait(first_report, "the raw script's first report")
    headers = {"Authorization": f"Bearer {head.token}"}

    def ended() -> str | None:
        status = httpx.get(f"{head.dashboard_url}/api/jobs/{submission}", headers=headers, timeout=30).json()
        return status["status"] if status["status"] in ("SUCCEEDED", "FAILED", "STOPPED") else None

    if (status := _wait(ended, f"Ray job {submission} to end")) != "SUCCEEDED":
        raise RuntimeError(f"the raw job ended {status}")
    return first - began


def measure(rounds: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="dljobs-bench-first-step-"))
    spec_file = work / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    database = f"sqlite+aiosqlite:///{work / 'dljobs.db'}"
    upgrade(database)
    head = LocalRayHead(num_cpus=2, log_file=work / "ray.log").start()
    controller: ControllerProcess | None = None
    try:
        controller = ControllerProcess(
            controller_env(database, head, work / "home", TOKEN), work / "controller.log"
        ).start()
        client = Client(controller.url, TOKEN)
        cli_env = {**os.environ, "DLJOBS_URL": controller.url, "DLJOBS_TOKEN": TOKEN}
        run_dljobs(client, spec_file, cli_env)  # warm-up: the first of each starts Ray's worker pool
        run_raw(head, work, 0)
        ours: list[DljobsRun] = []
        raw: list[float] = []
        for n in range(rounds):
            if n % 2:
                raw.append(run_raw(head, work, n + 1))
                ours.append(run_dljobs(client, spec_file, cli_env))
            else:
                ours.append(run_dljobs(client, spec_file, cli_env))
                raw.append(run_raw(head, work, n + 1))
            print(f"round {n + 1}: dljobs {ours[-1].first_report_s:.1f} s, raw {raw[-1]:.1f} s", flush=True)
    finally:
        if controller is not None:
            controller.stop()
        head.stop()
    ratios = [o.first_report_s / r for o, r in zip(ours, raw, strict=True)]
    return {
        "rounds": rounds,
        "dljobs_s": statistics.median(o.first_report_s for o in ours),
        "raw_s": statistics.median(raw),
        "ratio": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
        "cli_s": statistics.median(o.cli_s for o in ours),
        "launched_s": statistics.median(o.launched_s for o in ours),
        "running_s": statistics.median(o.running_s for o in ours),
    }


def report(figures: dict[str, object]) -> None:
    ratio = float(figures["ratio"])  # type: ignore[arg-type]
    low, high = figures["ratio_range"]  # type: ignore[misc]
    print(
        f"submit to first reported step, median of {figures['rounds']} rounds on a warm cluster: "
        f"dljobs {figures['dljobs_s']:.2f} s, raw `ray job submit` {figures['raw_s']:.2f} s"
    )
    print(
        f"  dljobs: CLI returns {figures['cli_s']:.2f} s, launched {figures['launched_s']:.2f} s, "
        f"running on Ray {figures['running_s']:.2f} s, first report {figures['dljobs_s']:.2f} s"
    )
    verdict = "ok" if ratio <= TARGET else "ABOVE TARGET"
    print(f"ratio: {ratio:.3f} (target <= {TARGET}) {verdict}; rounds {low:.3f}-{high:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report(measure(args.rounds))


if __name__ == "__main__":
    main()
