"""AWS CloudWatch / SageMaker endpoints: invocation counts, errors and latencies per endpoint variant,
fetched with ``GetMetricData`` behind CloudWatch's publication lag."""

from airis_mon.lazy import lazy_exports

# Loaded on first use: importing the config does not import the client library (the extra).
__getattr__, __all__ = lazy_exports(__name__, {"CloudWatchConfig": "config", "ReadFromCloudWatch": "transform"})
