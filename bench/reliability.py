"""Reliability at full size, with figures for docs/reliability.md (the tests run the same scenarios small).

- 200 short jobs (1 s; every tenth 10 s) while the controller is SIGKILLed three times (downtimes 0, 20 and
  60 s), against the same 200 jobs with no fault (the baseline, same run): all acknowledged, each launched
  once, each ending as Ray says, and the time the faults cost as a ratio;
- 1,000 short jobs through two controllers on one PostgreSQL: each launched once, the launches and the
  checks against Ray shared between them.

A scenario stops with an AssertionError at the first job lost, duplicated or launched twice. Needs the
machine's PostgreSQL (127.0.0.1:5432). Takes a while: about 2 s of CPU per Ray job.

    python -m bench.reliability [--jobs 200] [--shared-jobs 1000] [--skip-kills] [--skip-shared]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dljobs.controller.db.migrate import upgrade  # noqa: E402
from dljobs.controller.ray_head import LocalRayHead  # noqa: E402
from tests.support.postgres import create_database, drop_database  # noqa: E402
from tests.support.scenarios import controller_kills, two_controllers  # noqa: E402

TOKEN = "dlj_bench-admin-token-0000000000000000000000"


def _database() -> str:
    url = create_database("dljobs_bench")
    upgrade(url)
    return url


def _kills(head: LocalRayHead, work: Path, jobs: int) -> dict[str, object]:
    urls = [_database(), _database()]
    try:
        base = controller_kills(head, urls[0], work / "baseline", TOKEN, jobs=jobs, kills=0)
        hit = controller_kills(
            head, urls[1], work / "kills", TOKEN, jobs=jobs, kills=3, downtimes=(0.0, 20.0, 60.0)
        )
    finally:
        for url in urls:
            drop_database(url)
    figures: dict[str, object] = {
        "jobs": jobs,
        "kills_at_s_with_downtime_s": hit.kills,
        "jobs_running_on_ray_while_dead": hit.running_at_kills,
        "seconds": hit.seconds,
        "baseline_seconds": base.seconds,
        "ratio_to_baseline": round(hit.seconds / base.seconds, 2),
    }
    print(
        f"controller killed 3x: {jobs} jobs, all exactly once; {hit.seconds}s vs {base.seconds}s "
        f"without faults (ratio {hit.seconds / base.seconds:.2f}, of which 80 s is downtime); "
        f"{hit.running_at_kills} jobs ran on Ray while the controller was dead",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--shared-jobs", type=int, default=1000)
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--skip-shared", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dljobs-bench-reliability-"))
    head = LocalRayHead(num_cpus=2, log_file=work / "ray.log").start()
    figures: dict[str, object] = {}
    try:
        if not args.skip_kills:
            figures["controller_kills"] = _kills(head, work, args.jobs)
        if not args.skip_shared:
            url = _database()
            try:
                shared = two_controllers(head, url, work / "shared", TOKEN, jobs=args.shared_jobs)
            finally:
                drop_database(url)
            figures["two_controllers"] = {
                "jobs": args.shared_jobs,
                "seconds": shared.seconds,
                "shares": shared.shares,
            }
            print(
                f"two controllers: {args.shared_jobs} jobs, each launched once in {shared.seconds}s; "
                f"per controller {shared.shares}",
                flush=True,
            )
    finally:
        head.stop()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
