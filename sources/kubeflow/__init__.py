"""Kubeflow Pipelines runs (v2beta1 API, official ``kfp`` SDK): run and step
durations, success rates and run state changes."""

from airis_mon.lazy import lazy_exports

# Loaded on first use: importing the config does not import the client library (the extra).
__getattr__, __all__ = lazy_exports(__name__, {"KubeflowConfig": "config", "ReadFromKubeflow": "transform"})
