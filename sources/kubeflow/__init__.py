"""Kubeflow Pipelines runs (v2beta1 API, official ``kfp`` SDK): run and step
durations, success rates and run state changes."""

from sources.kubeflow.config import KubeflowConfig
from sources.kubeflow.transform import ReadFromKubeflow

__all__ = ["KubeflowConfig", "ReadFromKubeflow"]
