"""What this machine's CPU really runs, as opposed to what it advertises.

Some virtual machines advertise AMX (`amx_bf16` in /proc/cpuinfo, and the kernel grants the permission)
but stop the process with SIGILL when an AMX instruction runs. oneDNN then kills any bf16 training on CPUs.
Where AMX is advertised, a one-off probe in a child process tells whether it runs; if not, oneDNN is kept
to AVX-512 BF16, which every such CPU has.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
WITHOUT_AMX = "AVX512_CORE_BF16"
_PROBE = (
    "import torch\n"
    "layer = torch.nn.Linear(64, 64)\n"
    "with torch.autocast('cpu', dtype=torch.bfloat16):\n"
    "    layer(torch.randn(64, 64))\n"
)


def cpu_bf16_env(precision: str, use_gpu: bool) -> dict[str, str]:
    """Environment for CPU training workers: empty unless bf16 on CPUs needs AMX kept off."""
    if precision != "bf16" or use_gpu or ISA_VARIABLE in os.environ or not _advertises_amx():
        return {}
    return {} if _amx_runs() else {ISA_VARIABLE: WITHOUT_AMX}


def _advertises_amx() -> bool:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return any(line.startswith("flags") and " amx_bf16" in line for line in cpuinfo)
    except OSError:
        return False


@functools.cache
def _amx_runs() -> bool:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=300, check=False)
    return result.returncode == 0
