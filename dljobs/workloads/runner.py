"""The Ray job's driver: `python -m dljobs.workloads.runner`, configured by the env in dljobs.spec.runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from dljobs.spec.loading import read_stored_spec
from dljobs.spec.runtime import ENV_SPEC

ERROR_MARK = "dljobs-error: "


def main() -> int:
    spec = read_stored_spec(json.loads(os.environ[ENV_SPEC]))
    if spec.workload.command:
        print(f"dljobs: running `{spec.workload.command}`", flush=True)
        return subprocess.call(spec.workload.command, shell=True)
    print(
        f"{ERROR_MARK}workload: '{spec.workload.kind}' workloads need the training runtime", file=sys.stderr
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
