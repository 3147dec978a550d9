"""Sweep efficiency: ASHA against random search, same space, same seed, same number of trials, in one run.

Both sweeps run dljobs' own sweep driver (Tune, each trial a one-worker TorchTrainer) on a local Ray cluster
started here. Reported for each: trial-epochs used (Tune reports, one per epoch, over all trials) and the best
metric. Target: ASHA's best within 0.5% of random search's, with at most a third of its trial-epochs. Also the
scheduling overhead per trial on the warm cluster: the random sweep's wall time less its trials' TorchTrainer
fit times (measured inside each trial), per trial, run one at a time (target under 2 s).

ASHA is set as its paper's experiments set it: reduction factor 4 (rungs at 1, 4 and 16 epochs), with
enough trials that most are judged against many others. With one trial at a time, the first trials are
promoted against few rivals (the very first always runs to the end), so the share of trial-epochs falls
as trials grow: about 0.37 at 12 trials, 0.29 at 24, 0.26 at 36 (simulated with uniformly random ranks).

    python -m bench.sweep_efficiency [--trials 36] [--epochs 16] [--reduction-factor 4] [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dljobs.spec.loading import validate_spec
from dljobs.workloads.train.context import RunContext


def spec(algorithm: str, trials: int, epochs: int, reduction_factor: int) -> Any:
    return validate_spec(
        {
            "name": "bench-sweep",
            "workload": {"model": "mlp", "params": {"hidden": [64]}},
            "data": {"source": "builtin://digits", "validation_split": 0.2},
            "training": {"epochs": epochs, "batch_size": 64, "seed": 11},
            "resources": {"workers": 1, "cpus_per_worker": 1},
            "sweep": {
                "metric": "val_accuracy",
                "mode": "max",
                "algorithm": algorithm,
                "trials": trials,
                "max_concurrent": 1,
                "grace_epochs": 1,
                "reduction_factor": reduction_factor,
                "space": {
                    "training.optimizer.lr": {"loguniform": [1.0e-4, 1.0e-1]},
                    "workload.params.dropout": {"uniform": [0.0, 0.5]},
                },
            },
        }
    )


def run(algorithm: str, trials: int, epochs: int, reduction_factor: int, root: Path) -> dict[str, Any]:
    from dljobs.workloads.runner import hand_over, prepare_model_data
    from dljobs.workloads.sweep import build_tuner, trial_rows
    from dljobs.workloads.sweep_trial import read_trial_summary

    job = spec(algorithm, trials, epochs, reduction_factor)
    context = RunContext(job_id=f"bench-{algorithm}", artifacts_url=(root / algorithm).as_uri())
    _, data = prepare_model_data(job, 11)
    data_config, datasets = hand_over(data)
    started = time.perf_counter()
    results = build_tuner(job, context, data_config, datasets).fit()
    wall = time.perf_counter() - started
    rows = trial_rows(results, "val_accuracy", "max")
    fits = [(read_trial_summary(context, row["number"]) or {}).get("fit_seconds") for row in rows]
    return {
        "algorithm": algorithm,
        "trials": len(rows),
        "trial_epochs": sum(row["epochs"] for row in rows),
        "best": max(row["metric"] for row in rows if row["metric"] is not None),
        "wall_s": wall,
        "fit_s": [f for f in fits if f is not None],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=36)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--reduction-factor", type=int, default=4)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    import os

    from dljobs.controller.ray_head import LocalRayHead
    from dljobs.workloads.train.trainer import apply_ray_train_env

    apply_ray_train_env()
    with tempfile.TemporaryDirectory(prefix="dljobs-bench-sweep-") as tmp:
        # a head as dljobs starts one: every process of it has RAY_ADDRESS, so Ray Train's placement-group
        # cleaner finds it even beside other clusters on the machine (without, stopped trials' groups leak)
        head = LocalRayHead(num_cpus=args.cpus, log_file=Path(tmp) / "head.log").start()
        try:
            os.environ.update({**head.env(), "RAY_ADDRESS": head.gcs_address})
            import ray  # after the token is in the environment: Ray reads its auth mode on import

            ray.init(address=head.gcs_address, logging_level="ERROR")
            random = run("random", args.trials, args.epochs, args.reduction_factor, Path(tmp))
            asha = run("asha", args.trials, args.epochs, args.reduction_factor, Path(tmp))
        finally:
            if "ray" in sys.modules:
                sys.modules["ray"].shutdown()
            head.stop()
    epochs_ratio = asha["trial_epochs"] / random["trial_epochs"]
    gap = (random["best"] - asha["best"]) / random["best"]
    complete = random["fit_s"]
    overhead = (random["wall_s"] - sum(complete)) / max(1, len(complete)) if complete else float("nan")
    print(json.dumps({"random": random, "asha": asha}, indent=2, default=str))
    print(
        f"random: {random['trial_epochs']} trial-epochs, best val_accuracy {random['best']:.4f}\n"
        f"asha:   {asha['trial_epochs']} trial-epochs, best val_accuracy {asha['best']:.4f}\n"
        f"asha/random trial-epochs: {epochs_ratio:.2f} (target <= 0.33); "
        f"best gap {gap * 100:.2f}% (target <= 0.5%)\n"
        f"scheduling overhead per trial (warm cluster, one at a time): {overhead:.2f} s (target < 2 s)"
    )


if __name__ == "__main__":
    main()
