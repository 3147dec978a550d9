"""Soak: the embedded stack (`dljobs up`: controller, SQLite, its own Ray head) runs a stream of small jobs
for a long while; its memory must stay flat and nothing may leak.

Figures, each beside its target:
- the controller's resident memory at the end against the same process once warm (the baseline, sampled
  in the same run after the first tenth of the time): growth under 10%;
- its open file descriptors, end against warm: no growth beyond a handful;
- the processes of the stack's two process groups (controller, Ray head), end against warm;
- after `dljobs down`: no process of either group left.

    python -m bench.soak [--minutes 30] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dljobs.cli import local_stack  # noqa: E402
from dljobs.client.http import Client  # noqa: E402
from dljobs.spec.local import RAY_HEAD_PID_FILE  # noqa: E402
from dljobs.spec.status import TERMINAL, JobStatus  # noqa: E402

TERMINAL_NAMES = {s.value for s in TERMINAL}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
                if os.getpgid(int(entry.name)) == pgid and not zombie:  # a zombie holds nothing
                    found.append(int(entry.name))
            except (ProcessLookupError, FileNotFoundError):
                continue
    return found


def _sample(controller: int, ray_group: int) -> dict[str, int]:
    return {
        "controller_rss_kib": _rss_kib(controller),
        "controller_fds": len(os.listdir(f"/proc/{controller}/fd")),
        "processes": len(_group(controller)) + len(_group(ray_group)),
        "ray_rss_kib": sum(_rss_kib(pid) for pid in _group(ray_group) if Path(f"/proc/{pid}").exists()),
    }


def _count(client: Client, statuses: list[JobStatus]) -> int:
    total, cursor = 0, None
    while True:
        page = client.list_jobs(status=statuses, limit=200, cursor=cursor)
        total += len(page.items)
        cursor = page.next_cursor
        if not cursor:
            return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dljobs-soak-"))
    os.environ["DLJOBS_HOME"] = str(home)
    server = local_stack.start(home)
    client = Client(server.url, server.token())
    pid_file = home / RAY_HEAD_PID_FILE  # written as the controller starts its Ray head
    deadline = time.monotonic() + 300
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    if not pid_file.exists():
        local_stack.stop(home)
        raise SystemExit("the local Ray head did not start")
    ray_group = int(pid_file.read_text().strip())
    duration = args.minutes * 60
    began = time.monotonic()
    warm: dict[str, int] | None = None
    samples: list[dict[str, int]] = []
    pending: list[int] = []
    submitted = 0
    next_sample = began
    try:
        while time.monotonic() - began < duration:
            pending = [j for j in pending if client.get_job(j).status.value not in TERMINAL_NAMES]
            while len(pending) < args.concurrency:
                spec = {
                    "name": f"soak-{submitted}",
                    "workload": {"command": f"echo soak {submitted}"},
                    "resources": {"workers": 1, "cpus_per_worker": 0.5},
                }
                pending.append(client.submit(spec).id)
                submitted += 1
            if time.monotonic() >= next_sample:
                sample = _sample(server.pid, ray_group)
                samples.append(sample)
                if warm is None and time.monotonic() - began >= duration / 10:
                    warm = sample
                print(
                    json.dumps({"t": round(time.monotonic() - began), "jobs": submitted, **sample}),
                    flush=True,
                )
                next_sample += max(duration / 60, 5)
            time.sleep(0.5)
        for job_id in pending:
            while client.get_job(job_id).status.value not in TERMINAL_NAMES:
                time.sleep(0.5)
        failed = _count(client, [s for s in TERMINAL if s.value != "SUCCEEDED"])
        end = _sample(server.pid, ray_group)
    finally:
        local_stack.stop(home)
    deadline = time.monotonic() + 30
    while (left := _group(server.pid) + _group(ray_group)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200]
        print(f"left behind: {pid} {cmdline.decode(errors='replace')}")
    warm = warm or samples[0]
    growth = end["controller_rss_kib"] / warm["controller_rss_kib"]
    print(f"jobs: {submitted} in {args.minutes:.0f} min, {failed} not SUCCEEDED (target 0)")
    print(
        f"controller RSS: {warm['controller_rss_kib']} KiB warm -> {end['controller_rss_kib']} KiB"
        f" at the end, ratio {growth:.3f} (target <= 1.10)"
    )
    print(f"controller fds: {warm['controller_fds']} warm -> {end['controller_fds']} (target: +5 at most)")
    print(
        f"stack processes: {warm['processes']} warm -> {end['processes']}; Ray RSS "
        f"{warm['ray_rss_kib']} -> {end['ray_rss_kib']} KiB"
    )
    print(f"processes left after `dljobs down`: {len(left)} (target 0)")


if __name__ == "__main__":
    main()
