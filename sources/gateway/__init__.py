"""The HTTP ingestion gateway's spool (durable hand-off) and its pipeline source.

The server itself is :mod:`pipelines.gateway`.
"""

from sources.gateway.config import GatewayConfig
from sources.gateway.transform import ReadFromGatewaySpool

__all__ = ["GatewayConfig", "ReadFromGatewaySpool"]
