"""Data sets for the built-in workloads: built-in sets, file loaders, splits, augmentation, streaming."""

from dljobs.workloads.data.base import DataInfo, PreparedData
from dljobs.workloads.data.loading import load_data

__all__ = ["DataInfo", "PreparedData", "load_data"]
