"""The built-in models from the seed tutorials, their transfer learning and TorchScript export."""

from dljobs.workloads.models.build import SUPPORTED_INPUTS, build_model
from dljobs.workloads.models.export import example_input, export_torchscript
from dljobs.workloads.models.transfer import LoadResult, freeze, load_pretrained, replace_head

__all__ = [
    "SUPPORTED_INPUTS",
    "LoadResult",
    "build_model",
    "example_input",
    "export_torchscript",
    "freeze",
    "load_pretrained",
    "replace_head",
]
