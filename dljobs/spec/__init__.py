"""The shared contract: job spec models, API bodies and the state machine.

Importable by the CLI, the controller and the workloads alike: it needs pydantic and PyYAML only.
"""

from dljobs.spec.errors import FieldError, SpecError
from dljobs.spec.job import JobSpec
from dljobs.spec.loading import load_spec_file, load_spec_text, read_stored_spec, validate_spec
from dljobs.spec.status import JobStatus

__all__ = [
    "FieldError",
    "JobSpec",
    "JobStatus",
    "SpecError",
    "load_spec_file",
    "load_spec_text",
    "read_stored_spec",
    "validate_spec",
]
