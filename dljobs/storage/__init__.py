"""The artifact store: code bundles, checkpoints, models and logs, on a local directory or S3.

One interface for both (`open_store(url)`), used by the controller and by the workloads alike.
boto3 is imported only when an s3:// store is opened.
"""

from dljobs.storage.base import ArtifactStore, ObjectInfo, StorageError, check_key, join_url
from dljobs.storage.open import open_store

__all__ = ["ArtifactStore", "ObjectInfo", "StorageError", "check_key", "join_url", "open_store"]
