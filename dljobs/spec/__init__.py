"""The shared contract: job spec models, API bodies and the state machine.

Importable by the CLI, the controller and the workloads alike: it needs pydantic and PyYAML only. Import
from the submodules (`dljobs.spec.job`, `dljobs.spec.loading`, ...): this package itself loads nothing, so
that `import dljobs.spec.errors` stays cheap for the CLI.
"""
