"""Alert notifications as PagerDuty Events API v2 events (trigger, repeat, resolve)."""

from sinks.pagerduty.config import PagerDutyConfig
from sinks.pagerduty.encoder import PagerDutyEncoder
from sinks.pagerduty.transform import WriteToPagerDuty

__all__ = ["PagerDutyConfig", "PagerDutyEncoder", "WriteToPagerDuty"]
