"""What the RayJob launcher puts around every job's Ray pods: the installation's side of a RayJob.

The Helm chart renders it from its values (secrets, S3 settings, service account, GPU node pools, the pools'
maxima) into a JSON file the controller reads with `RayJobTemplate.load`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_UNITS: dict[str | None, int] = {
    None: 1,
    **{suffix: 10 ** (3 * power) for power, suffix in enumerate("kMGTP", 1)},
    **{f"{suffix}i": 2 ** (10 * power) for power, suffix in enumerate("KMGTP", 1)},
}


class AcceleratorPool(BaseModel):
    """Where pods with one accelerator type run: the GPU node pool's selector and taints."""

    model_config = ConfigDict(extra="forbid")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)


class HeadShape(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpus: float = Field(default=1.0, gt=0)
    memory: str = "4Gi"


class CapacityLimits(BaseModel):
    """What the scheduler may hand out in all (the node pools' maxima)."""

    model_config = ConfigDict(extra="forbid")
    cpus: float = Field(default=0.0, ge=0)
    gpus: float = Field(default=0.0, ge=0)
    accelerators: dict[str, float] = Field(default_factory=dict)


class RayJobTemplate(BaseModel):
    """Everything around a job's Ray pods that is the installation's, not the job's."""

    model_config = ConfigDict(extra="forbid")
    ray_version: str = "2.60.0"
    auth_secret: str | None = Field(
        default=None, description="Secret with key auth_token; None: no token auth"
    )
    service_account: str | None = None
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: list[dict[str, str]] = Field(default_factory=list)
    priority_class_name: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    env: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes EnvVars for every Ray pod"
    )
    head: HeadShape = Field(default_factory=HeadShape)
    memory_per_cpu: str = "4Gi"
    shared_memory: str = "4Gi"
    tmp_size: str = "50Gi"
    gpu_tolerations: list[dict[str, Any]] = Field(default_factory=list)
    accelerators: dict[str, AcceleratorPool] = Field(default_factory=dict)
    capacity: CapacityLimits = Field(default_factory=CapacityLimits)

    @classmethod
    def load(cls, path: Path) -> RayJobTemplate:
        return cls.model_validate_json(Path(path).read_text())


def quantity_bytes(quantity: str) -> int:
    match = _QUANTITY.match(quantity.strip())
    if not match:
        raise ValueError(f"'{quantity}' is not a memory quantity such as 512Mi or 16Gi")
    return math.ceil(float(match.group(1)) * _UNITS[match.group(2)])


def mebibytes(size: int) -> str:
    return f"{math.ceil(size / 2**20)}Mi"


def cpu_quantity(cpus: float) -> str:
    return str(int(cpus)) if float(cpus).is_integer() else f"{math.ceil(cpus * 1000)}m"


def restricted_container_security() -> dict[str, Any]:
    """A container securityContext that passes the Pod Security "restricted" profile."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
