"""Alert notifications as enriched security events: signed JSON over HTTP, or Splunk HEC batches."""

from sinks.siem.config import SiemConfig
from sinks.siem.encoder import SiemEncoder, enriched_event, sign
from sinks.siem.transform import WriteToSiem

__all__ = ["SiemConfig", "SiemEncoder", "WriteToSiem", "enriched_event", "sign"]
