"""The HTTP ingestion gateway (:mod:`sources.gateway.app`, served by :mod:`pipelines.gateway`), its spool
(durable hand-off) and its pipeline source.

Importing this package imports no Beam (the gateway starts fast): ``ReadFromGatewaySpool`` is loaded on
first use.
"""

from sources.gateway.config import GatewayConfig

__all__ = ["GatewayConfig", "ReadFromGatewaySpool"]


def __getattr__(name: str):
    if name == "ReadFromGatewaySpool":
        from sources.gateway.transform import ReadFromGatewaySpool

        return ReadFromGatewaySpool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
