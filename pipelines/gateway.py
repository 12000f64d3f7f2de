"""The ingestion gateway: AIRIS-MON's inbound HTTP API, authenticated, validated, rate limited, and durably handed
to the pipeline through a spool (or Pub/Sub).

    python -m pipelines.gateway --config airis-mon.yaml [--integration api]

The API is :mod:`sources.gateway.app` (routes and answers), :mod:`sources.gateway.bodies` (reading,
decoding and validating bodies), :mod:`sources.gateway.signed_routes` (MLflow and GitHub webhooks) and
:mod:`sources.gateway.spool` (the group-committed spool); its OpenAPI document is at ``/openapi.json``.

Start-up reads only this gateway's entry of the config file (the rest is the pipeline's to validate), and
imports no Beam, so the API answers about a second after launch. It prints one line when it serves.

Why FastAPI/uvicorn: pydantic validation is the same code the pipeline uses at its edges, the OpenAPI
document is generated from it, and both projects are widely used and actively maintained.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading
import time
from collections.abc import Sequence

from pydantic import ValidationError

from airis_mon.config_file import integration_entries, read_document
from airis_mon.errors import ConfigError
from airis_mon.extras import COMMAND_EXTRAS, install_hint, one_line_on_missing_extra, require
from airis_mon.logs import report_failure
from airis_mon.validation import describe_validation_error
from sources.gateway.config import GatewayConfig

__all__ = ["load_gateway_config", "run", "uvicorn_options"]

LOG = logging.getLogger("airis_mon.gateway")


def load_gateway_config(config_path: str, name: str | None = None) -> GatewayConfig:
    """The one ``type: gateway`` integration of the config file (the one named ``name`` if given), validated;
    a :class:`ConfigError` naming its path otherwise."""
    document, base_dir = read_document(config_path)
    entries = [(i, e) for i, e in integration_entries(document, "gateway") if name is None or e.get("name") == name]
    if len(entries) != 1:
        wanted = f" named {name!r}" if name else ""
        raise ConfigError([f"integrations: expected exactly one gateway integration{wanted}, found {len(entries)}"],
                          config_path)  # fmt: skip
    index, entry = entries[0]
    try:
        return GatewayConfig.model_validate(entry, context={"base_dir": base_dir})
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, prefix=f"integrations[{index}]"), config_path) from None


def _writer(config: GatewayConfig):
    if config.handoff == "pubsub":
        from sources.gateway.handoff import PubSubHandoff

        return PubSubHandoff(config.pubsub_topic, config.pubsub_endpoint)
    from sources.gateway.spool import SpoolWriter

    return SpoolWriter(config.spool, config.max_segment_bytes, config.max_segment_age_s)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: serve until SIGINT/SIGTERM; the open spool segment is closed on exit."""
    started = time.monotonic()
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.gateway",
        description=__doc__.split("\n\n")[0],
        epilog=f"Needs: {install_hint(COMMAND_EXTRAS['pipelines.gateway'])}",
    )
    parser.add_argument("--config", required=True, help="YAML config with one `type: gateway` integration")
    parser.add_argument("--integration", default=None, help="which gateway integration, when there are several")
    from airis_mon.logs import add_logging_arguments, set_integration

    add_logging_arguments(parser, "INFO")
    args = parser.parse_args(argv)
    require("python -m pipelines.gateway", *COMMAND_EXTRAS["pipelines.gateway"])
    import uvicorn

    from sources.gateway.app import create_app

    try:
        config = load_gateway_config(args.config, args.integration)
    except ConfigError as error:
        report_failure(error)
        return 2
    set_integration(config.name)  # every log line of this process is about this integration
    writer = _writer(config)
    app = create_app(config, writer)
    stop = threading.Event()

    def prune_spool() -> None:
        """Delete keys files past the dedup window and processed segments past their retention."""
        from sources.gateway.spool import prune_keys, prune_processed

        prune_keys(config.spool, time.time() - config.dedup_window_s)
        prune_processed(config.spool, time.time() - config.processed_retention_s)

    def rotate() -> None:
        """Close segments past their age; every 10 minutes, prune keys files and processed segments."""
        ticks = 0
        while not stop.wait(1.0):
            writer.rotate_if_due()
            ticks += 1
            if config.handoff == "spool" and ticks % 600 == 0:
                prune_spool()

    server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options(config)))

    def announce_when_listening() -> None:
        """Print the ready line once uvicorn's sockets accept connections (its start-up hooks run before)."""
        while not server.started:
            if stop.wait(0.01):
                return
        # Everything allocated so far lives as long as the process: keep the collector from scanning it
        # again at each full collection (pauses that showed in the p99 latency).
        gc.freeze()
        where = f"spool {config.spool}" if config.handoff == "spool" else f"Pub/Sub {config.pubsub_topic}"
        print(f"AIRIS-MON gateway {config.name!r} ready on http://{config.host}:{config.port} "
              f"({where}; {len(config.tokens)} token(s); started in {time.monotonic() - started:.2f} s)",
              flush=True)  # fmt: skip

    def close_spool() -> None:
        stop.set()
        writer.close()  # publish the open segment before the process exits

    # uvicorn re-raises SIGTERM/SIGINT after its shutdown, so code after run() may never execute:
    # close the spool in the app's shutdown phase instead.
    app.router.on_shutdown.append(close_spool)
    if config.handoff == "spool":
        prune_spool()
    threading.Thread(target=rotate, daemon=True).start()
    threading.Thread(target=announce_when_listening, name="announce", daemon=True).start()
    server.run()
    return 0


def uvicorn_options(config: GatewayConfig) -> dict:
    """How the gateway runs uvicorn (shared with the benchmark's baseline server)."""
    # log_config None: uvicorn's loggers keep no handlers of their own and go through the process's (--log-format)
    return {"host": config.host, "port": config.port, "log_level": "warning", "access_log": False, "log_config": None}


if __name__ == "__main__":
    from airis_mon.logs import setup_logging_from_argv

    setup_logging_from_argv("gateway", "INFO")
    with one_line_on_missing_extra("python -m pipelines.gateway"):
        sys.exit(run())
