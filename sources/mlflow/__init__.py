"""The MLflow model registry, polled: ``model_version_status`` events for what changed
(new versions, stages, aliases, tags, statuses, deletions) and registry metadata
for enrichment (:func:`~sources.mlflow.snapshot.model_metadata`).

The config and the snapshot functions import without the ``mlflow`` package;
``ReadFromMlflow`` and ``MlflowRegistryPoller`` load it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sources.mlflow.config import MlflowConfig
from sources.mlflow.snapshot import model_metadata

if TYPE_CHECKING:
    from sources.mlflow.transform import MlflowRegistryPoller, ReadFromMlflow

__all__ = ["MlflowConfig", "MlflowRegistryPoller", "ReadFromMlflow", "model_metadata"]


def __getattr__(name: str) -> Any:
    if name in ("MlflowRegistryPoller", "ReadFromMlflow"):
        from sources.mlflow import transform

        return getattr(transform, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
