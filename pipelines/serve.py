"""Run AIRIS-MON continuously on one machine: gateway, pollers, the pipeline in cycles, delivery, /metrics.

::

    python -m pipelines.serve --config airis-mon.yaml            # until Ctrl-C or SIGTERM
    python -m pipelines.serve --config airis-mon.yaml --once     # one cycle and its deliveries (cron)

What runs (see :mod:`pipelines.live.runner`):

- the ingestion gateway of each ``type: gateway`` integration, as a child
  process (restarted if it dies), unless ``live.start_gateway: false``;
- the web console (``python -m pipelines.console``) as a child process when the config has a ``console:``
  section, unless ``live.start_console: false``;
- every ``live.cycle_interval_s`` a cycle: new spool segments and recorded
  files, the polled integrations whose ``poll.interval_s`` has passed,
  windows evaluated once they ended ``live.allowed_lateness`` ago, state
  committed atomically with the input position;
- a delivery thread sending each committed notification once
  (:mod:`pipelines.live.outbox`);
- ``GET /metrics`` on ``live.metrics_host:live.metrics_port``
  (:mod:`pipelines.live.metrics`).

SIGINT or SIGTERM stops it cleanly: the running cycle finishes (or, if the
process is killed instead, is re-run from its plan on the next start), the
notification being sent is recorded, the gateway closes its open segment.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import requests

from airis_mon.config import Config, load_config
from airis_mon.errors import ConfigError
from airis_mon.extras import COMMAND_EXTRAS, install_hint, one_line_on_missing_extra, require
from airis_mon.logs import add_logging_arguments, child_env, child_logging_args, report_failure, setup_logging
from pipelines.live.outbox import Outbox
from pipelines.live.runner import LiveRunner, describe
from pipelines.main import notification_sinks
from pipelines.options import DEFAULT_OUTPUT
from sources.gateway.config import GatewayConfig

if TYPE_CHECKING:
    from pipelines.live.metrics import LiveMetrics

__all__ = ["run"]

LOG = logging.getLogger("airis_mon.serve")
_CHILD_READY_S = 60.0  # a child imports FastAPI (the console also Beam): allow a slow first start


class _Child:
    """One child process serving HTTP (a gateway, the console), restarted when it exits on its own."""

    def __init__(self, label: str, args: list[str], url: str):
        self._args = [sys.executable, "-m", *args, *child_logging_args()]
        self.label = label
        self.url = url
        self.process: subprocess.Popen | None = None

    @classmethod
    def gateway(cls, config_path: str, integration: GatewayConfig) -> _Child:
        return cls(f"gateway {integration.name}", ["pipelines.gateway", "--config", config_path, "--integration",
                   integration.name], f"http://{integration.host}:{integration.port}")  # fmt: skip

    @classmethod
    def console(cls, config_path: str, output: str, host: str, port: int) -> _Child:
        return cls("console", ["pipelines.console", "--config", config_path, "--output", output],
                   f"http://{host}:{port}")  # fmt: skip

    def start(self) -> None:
        self.process = subprocess.Popen(self._args, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                        env=child_env())  # fmt: skip
        deadline = time.monotonic() + _CHILD_READY_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.process.returncode}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"{self.label} not ready at {self.url} after {_CHILD_READY_S:g} s")

    def keep_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            LOG.warning("%s exited with %s; restarting", self.label, self.process.returncode)
            self.start()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # the gateway closes its open segment on SIGTERM
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when this process dies (even by SIGKILL), so a killed
    runner never leaves a gateway holding its port. Elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _deliver_forever(outbox: Outbox, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            outbox.deliver_pending(stop)
        except Exception:  # a bug must not stop deliveries for good: log it and try again
            LOG.exception("delivery failed; retrying")
        stop.wait(0.5)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.serve",
        description=__doc__.split("\n\n")[0],
        epilog=f"Needs: {install_hint(COMMAND_EXTRAS['pipelines.serve'])}, and the extra of each configured "
        "integration (gateway for a `type: gateway` one)",
    )
    parser.add_argument("--config", required=True, help="the YAML config (integrations, rules, sinks, live)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"storage folder (default {DEFAULT_OUTPUT})")
    parser.add_argument("--num_shards", type=int, default=4, help="aggregation shards per cycle (default 4)")
    parser.add_argument("--once", action="store_true", help="run one cycle, deliver its notifications, exit")
    add_logging_arguments(parser, "INFO")
    return parser.parse_args(argv)


def _gateways(config: Config, config_path: str) -> list[_Child]:
    if not config.live.start_gateway:
        return []
    integrations = [i for i in config.integrations if isinstance(i, GatewayConfig)]
    for integration in integrations:
        if integration.handoff != "spool":
            raise ConfigError([f"integrations: gateway {integration.name!r}: the live runner reads the "
                               "spool; handoff: pubsub is for Dataflow"])  # fmt: skip
        if integration.max_segment_age_s > config.live.cycle_interval_s:
            LOG.warning("gateway %s: max_segment_age_s %g s > live.cycle_interval_s %g s: records wait that long "
                        "before a cycle can read them", integration.name, integration.max_segment_age_s,
                        config.live.cycle_interval_s)  # fmt: skip
    return [_Child.gateway(config_path, i) for i in integrations]


def _consoles(config: Config, config_path: str, output: str) -> list[_Child]:
    """The console child, when the config has a ``console:`` section and ``live.start_console`` is on."""
    if config.console is None or not config.live.start_console:
        return []
    return [_Child.console(config_path, output, config.console.host, config.console.port)]


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parse_args(argv)
    setup_logging(args.log_format, args.log_level, "serve")
    try:
        config = load_config(args.config)
        gateways = _gateways(config, args.config)
        children = gateways + _consoles(config, args.config, args.output)
    except ConfigError as error:
        report_failure(error)
        return 2
    require("python -m pipelines.serve", *COMMAND_EXTRAS["pipelines.serve"], *(["gateway"] if gateways else []),
            *(["console"] if len(children) > len(gateways) else []))  # fmt: skip
    from pipelines.live.metrics import LiveMetrics, serve_metrics

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    runner = LiveRunner(config, args.output, num_shards=args.num_shards)
    outbox = Outbox({s.name: s for s in notification_sinks(config, args.output)}, runner.state_dir, runner.output)
    metrics = LiveMetrics(runner, outbox)
    server, port = serve_metrics(metrics, config.live.metrics_host, config.live.metrics_port)
    started = []
    try:
        for child in children:
            child.start()
            started.append(child)
            LOG.info("%s ready at %s", child.label, child.url)
        deliverer = threading.Thread(target=_deliver_forever, args=(outbox, stop), name="delivery", daemon=True)
        if not args.once:
            deliverer.start()
        LOG.info("AIRIS-MON live: output %s, state %s, metrics http://%s:%d/metrics, a cycle every %g s, windows "
                 "of %d s evaluated %d s after they end", runner.output, runner.state_dir, config.live.metrics_host,
                 port, config.live.cycle_interval_s, config.aggregation.window_seconds,
                 config.live.allowed_lateness_s)  # fmt: skip
        _cycles(runner, metrics, children, stop, config.live.cycle_interval_s, once=args.once)
        if args.once:
            outbox.deliver_pending()
        stop.set()
        if deliverer.is_alive():
            deliverer.join()
    finally:
        for child in started:
            child.stop()
        server.shutdown()
    LOG.info("AIRIS-MON live stopped after cycle %d", runner.checkpoint.cycle)
    return 0


def _cycles(runner: LiveRunner, metrics: LiveMetrics, children: list[_Child], stop: threading.Event,
            interval_s: float, once: bool) -> None:  # fmt: skip
    failures = 0
    while not stop.is_set():
        began = time.monotonic()
        try:
            for child in children:
                child.keep_alive()
            report = runner.run_cycle()
            metrics.record_cycle(report.counters, report.seconds)
            failures = 0
            LOG.info("cycle %s", describe(report))
        except Exception:
            failures += 1
            metrics.record_failure()
            LOG.exception("cycle failed (%d in a row); it is re-run from its plan", failures)
            if once:
                raise
        if once:
            return
        pause = interval_s if not failures else min(300.0, interval_s * 2**failures)
        stop.wait(max(0.0, pause - (time.monotonic() - began)))


if __name__ == "__main__":
    with one_line_on_missing_extra("python -m pipelines.serve"):
        sys.exit(run())
