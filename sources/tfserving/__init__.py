"""Watch TensorFlow Serving over gRPC: model version states (``GetModelStatus``),
a timed ``Predict`` probe (``inference_latency``, ms), and optionally the
server's Prometheus metrics (request rates, latency quantiles).

The official stubs come from ``tensorflow-serving-api`` (the ``tfserving``
extra) and are imported lazily, in the poller's ``setup()``.
"""

from sources.tfserving.config import ProbeTensor, TFServingConfig, TFServingModel
from sources.tfserving.transform import ReadFromTFServing

__all__ = ["ProbeTensor", "ReadFromTFServing", "TFServingConfig", "TFServingModel"]
