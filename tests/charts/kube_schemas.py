"""Schema validation of Kubernetes objects without an API server.

Built-in kinds: the upstream OpenAPI schemas shipped by `kubernetes-validate` (strict: unknown fields
fail), for Kubernetes 1.33 and the newest version the package ships. KubeRay kinds: the `openAPIV3Schema` of
the KubeRay CRDs in `../shared/k8s-schemas/kuberay` beside the project, made strict the same way (the API
server would silently prune an unknown field, so a typo would otherwise pass). The CRDs are large: loaded
once per process.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = PROJECT_ROOT.parent / "shared" / "k8s-schemas"
KUBERAY_CRDS = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayService": "ray.io_rayservices.yaml",
}
OLDEST_KUBERNETES = "1.33"


def kubernetes_versions() -> list[str]:
    newest = kubernetes_validate.latest_version()
    newest = ".".join(newest.split(".")[:2])
    return [OLDEST_KUBERNETES] if newest == OLDEST_KUBERNETES else [OLDEST_KUBERNETES, newest]


def schemas_dir() -> Path:
    """The shared schemas, or a failure saying where they were looked for (never a silent skip)."""
    kuberay = SCHEMAS_DIR / "kuberay"
    missing = [name for name in KUBERAY_CRDS.values() if not (kuberay / name).is_file()]
    if missing:
        raise AssertionError(
            f"the KubeRay CRD schemas are missing: expected {', '.join(missing)} in {kuberay} "
            "(the shared/ directory beside the project root holds k8s-schemas/kuberay)"
        )
    return SCHEMAS_DIR


def _strict(schema: Any) -> Any:
    """Forbid unknown fields wherever the schema lists its fields and does not keep unknown ones."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def crd_validator(kind: str, version: str = "v1") -> jsonschema.protocols.Validator:
    path = schemas_dir() / "kuberay" / KUBERAY_CRDS[kind]
    crd = yaml.safe_load(path.read_text())
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema = _strict(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
            # apiVersion/kind/metadata are checked by the API server, not by the CRD: require them here.
            schema.setdefault("required", [])
            schema["required"] = sorted({*schema["required"], "apiVersion", "kind", "metadata", "spec"})
            return jsonschema.Draft7Validator(schema)
    raise AssertionError(f"{path.name} serves no version {version}")


def crd_errors(obj: dict[str, Any]) -> list[str]:
    kind = obj["kind"]
    group, _, version = obj["apiVersion"].partition("/")
    if group != "ray.io" or kind not in KUBERAY_CRDS:
        raise AssertionError(f"no KubeRay CRD for {obj['apiVersion']} {kind}")
    validator = crd_validator(kind, version)
    name = obj["metadata"].get("name")
    return [
        f"{kind}/{name}: {'/'.join(map(str, err.absolute_path)) or '(root)'}: {err.message}"
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def kubernetes_errors(obj: dict[str, Any], version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = "/".join(map(str, err.absolute_path)) or "(root)"
        return [f"{obj['kind']}/{obj['metadata'].get('name')} (Kubernetes {version}): {path}: {err.message}"]
    return []


def has_kubernetes_schema(obj: dict[str, Any]) -> bool:
    try:
        kubernetes_validate.validate(obj, OLDEST_KUBERNETES, strict=False)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    except kubernetes_validate.ValidationError:
        return True
    return True
