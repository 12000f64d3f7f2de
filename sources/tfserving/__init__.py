"""Watch TensorFlow Serving over gRPC: model version states (``GetModelStatus``),
a timed ``Predict`` probe (``inference_latency``, ms), and optionally the
server's Prometheus metrics (request rates, latency quantiles).

The official stubs come from ``tensorflow-serving-api`` (the ``tfserving``
extra) and are imported lazily, in the poller's ``setup()``.
"""

from airis_mon.lazy import lazy_exports

# Loaded on first use: importing the config does not import the client library (the extra).
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "ProbeTensor": "config",
        "TFServingConfig": "config",
        "TFServingModel": "config",
        "ReadFromTFServing": "transform",
    },
)
