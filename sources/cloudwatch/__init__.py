"""AWS CloudWatch / SageMaker endpoints: invocation counts, errors and latencies per endpoint variant,
fetched with ``GetMetricData`` behind CloudWatch's publication lag."""

from sources.cloudwatch.config import CloudWatchConfig
from sources.cloudwatch.transform import ReadFromCloudWatch

__all__ = ["CloudWatchConfig", "ReadFromCloudWatch"]
