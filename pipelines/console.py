"""The web console: alert, alert-detail, integration-health and silence pages, GraphQL and Slack's Acknowledge.

    python -m pipelines.console --config airis-mon.yaml --output ./airis-mon-output

It reads what the pipeline stored under ``--output`` (through a DuckDB index refreshed every
``console.refresh_interval_s``; :mod:`console.index`), the live runner's notification history and the
gateway's silence store. ``python -m pipelines.serve`` starts it as a child process when the config has a
``console:`` section (``live.start_console``). Routes: :mod:`console.app`. It prints one line when it serves.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from airis_mon.config import Config, load_config
from airis_mon.errors import ConfigError
from airis_mon.extras import COMMAND_EXTRAS, install_hint, one_line_on_missing_extra, require
from airis_mon.logs import add_logging_arguments, report_failure, setup_logging
from pipelines.options import DEFAULT_OUTPUT

__all__ = ["build_services", "run", "state_dir_of"]

LOG = logging.getLogger("airis_mon.console")


def state_dir_of(config: Config, output: str | Path) -> Path:
    """The live runner's state folder (its outbox receives PagerDuty acknowledgements)."""
    return Path(config.live.state_dir or Path(output) / "state").resolve()


def build_services(config: Config, output: str | Path, clock=time.time):
    """The store, acknowledger, silence store and Slack handler the app works on (:class:`ConsoleServices`)."""
    from airis_mon.silence_store import SilenceStore
    from console.acknowledgements import AcknowledgementStore, Acknowledger
    from console.app import ConsoleServices
    from console.queries import ConsoleStore
    from sources.gateway.config import GatewayConfig

    state_dir = state_dir_of(config, output)
    index_path = Path(config.console.index_path) if config.console.index_path else state_dir / "console.duckdb"
    index_path.parent.mkdir(parents=True, exist_ok=True)
    feed = None
    if config.console.bigquery is not None:
        from console.bigquery_feed import BigQueryFeed

        require("console.bigquery", "gcp")  # google-cloud-bigquery
        bq = config.console.bigquery
        feed = BigQueryFeed(bq.project, bq.dataset, bq.table_prefix)
    store = ConsoleStore(output, config, index_path=index_path, clock=clock, feed=feed)
    acknowledger = Acknowledger(config, output, state_dir, AcknowledgementStore(output), clock=clock)
    gateways = [i for i in config.integrations if isinstance(i, GatewayConfig)]
    silences = SilenceStore(gateways[0].silences_path()) if gateways else None
    slack = None
    if config.console.slack is not None:
        from console.slack_interactivity import SlackInteractivity

        slack = SlackInteractivity(config.console.slack, acknowledger, clock=clock)
    return ConsoleServices(store, acknowledger, silences, slack)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: serve until SIGINT/SIGTERM."""
    started = time.monotonic()
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.console",
        description=__doc__.split("\n\n")[0],
        epilog=f"Needs: {install_hint(COMMAND_EXTRAS['pipelines.console'])}",
    )
    parser.add_argument("--config", required=True, help="the YAML config (its console: section)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"storage folder (default {DEFAULT_OUTPUT})")
    add_logging_arguments(parser, "INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_format, args.log_level, "console")
    require("python -m pipelines.console", *COMMAND_EXTRAS["pipelines.console"])
    try:
        config = load_config(args.config)
        if config.console is None:
            raise ConfigError(["console: missing; add a console: section (host, port, tokens)"], args.config)
        if not config.console.tokens:
            raise ConfigError(["console.tokens: at least one token is needed (every page needs sign-in)"],
                              args.config)  # fmt: skip
    except ConfigError as error:
        report_failure(error)
        return 2
    import uvicorn

    from console.app import create_app

    services = build_services(config, args.output)
    app = create_app(config, services)
    stop = threading.Event()

    def refresh() -> None:
        try:
            services.store.refresh()
        except Exception:  # a bad file or an unreachable BigQuery must not stop the console: log, retry later
            LOG.exception("console index refresh failed; the pages answer from the index as it is; retrying")

    def refresh_forever() -> None:
        while not stop.wait(config.console.refresh_interval_s):
            refresh()

    refresh()

    app.router.on_shutdown.append(stop.set)
    threading.Thread(target=refresh_forever, name="console-refresh", daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(app, host=config.console.host, port=config.console.port,
                                           log_level="warning", access_log=False, log_config=None))  # fmt: skip

    def announce_when_listening() -> None:
        while not server.started:
            if stop.wait(0.01):
                return
        print(f"AIRIS-MON console ready on http://{config.console.host}:{config.console.port} "
              f"(output {args.output}; {len(config.console.tokens)} token(s); started in "
              f"{time.monotonic() - started:.2f} s)", flush=True)  # fmt: skip

    threading.Thread(target=announce_when_listening, name="announce", daemon=True).start()
    server.run()
    return 0


if __name__ == "__main__":
    with one_line_on_missing_extra("python -m pipelines.console"):
        sys.exit(run())
