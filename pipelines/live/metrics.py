"""The live runner's own metrics, served at ``GET /metrics`` in Prometheus text format.

Every value is read when scraped, from what the runner and the outbox already
keep (cycle reports, the checkpoint, delivery counts, the spool folders):

| metric | labels | meaning |
|---|---|---|
| ``airis_mon_points_in_total`` | integration | points read (counted in each cycle) |
| ``airis_mon_events_in_total`` | integration | events read |
| ``airis_mon_dead_letters_total`` | component | dead letters written (parse, normalize, live lateness, rules, ...) |
| ``airis_mon_spool_backlog_bytes`` | integration | bytes in spool segments not yet processed (closed and open) |
| ``airis_mon_spool_oldest_age_seconds`` | integration | oldest unprocessed segment's wait, s (open: since opened) |
| ``airis_mon_watermark_lag_seconds`` | | now minus the evaluation horizon (windows ending before it are evaluated), s |
| ``airis_mon_rule_evaluations_total`` | | (rule, group) evaluations |
| ``airis_mon_alerts`` | alertstate | groups pending or firing now (as Prometheus's ``ALERTS``) |
| ``airis_mon_alert_notifications_total`` | notification, severity | triggers, repeats and resolves emitted |
| ``airis_mon_notifications_total`` | sink, outcome | delivered / retried / dead_lettered notifications per sink |
| ``airis_mon_notification_backlog`` | | committed notifications not yet delivered |
| ``airis_mon_last_successful_poll_timestamp_seconds`` | integration | the newest healthy record of each integration |
| ``airis_mon_cycles_total`` / ``airis_mon_cycle_failures_total`` | | cycles committed / failed |
| ``airis_mon_last_cycle_seconds`` | | how long the last cycle took, s |
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from sources.gateway.spool import oldest_unread_ms

__all__ = ["LiveMetrics", "serve_metrics"]


class LiveMetrics:
    """Accumulates cycle counters; a Prometheus collector over the runner, the outbox and the spools."""

    def __init__(self, runner, outbox, clock=time.time):
        self._runner = runner
        self._outbox = outbox
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: Counter = Counter()  # Beam counter "namespace/name" -> total over cycles
        self.cycles = 0
        self.failures = 0
        self.last_cycle_s = 0.0

    def record_cycle(self, counters: dict[str, int], seconds: float) -> None:
        with self._lock:
            self._counters.update(counters)
            self.cycles += 1
            self.last_cycle_s = seconds

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1

    def _with_prefix(self, prefix: str) -> dict[str, int]:
        with self._lock:
            return {key[len(prefix) :]: value for key, value in self._counters.items() if key.startswith(prefix)}

    def collect(self):
        yield from self._inputs()
        yield from self._spools()
        yield from self._rules()
        yield from self._notifications()
        cycles = CounterMetricFamily("airis_mon_cycles", "Cycles committed")
        cycles.add_metric([], self.cycles)
        failures = CounterMetricFamily("airis_mon_cycle_failures", "Cycles that failed (retried from their plan)")
        failures.add_metric([], self.failures)
        took = GaugeMetricFamily("airis_mon_last_cycle_seconds", "Duration of the last cycle, s")
        took.add_metric([], self.last_cycle_s)
        yield from (cycles, failures, took)

    def _inputs(self):
        points = CounterMetricFamily("airis_mon_points_in", "Points read", labels=["integration"])
        events = CounterMetricFamily("airis_mon_events_in", "Events read", labels=["integration"])
        for key, value in sorted(self._with_prefix("integration:").items()):
            integration, _, name = key.rpartition("/")
            (points if name == "points_in" else events).add_metric([integration], value)
        dead = CounterMetricFamily("airis_mon_dead_letters", "Dead letters written", labels=["component"])
        for component, value in sorted(self._with_prefix("dead_letters/").items()):
            dead.add_metric([component], value)
        last = GaugeMetricFamily(
            "airis_mon_last_successful_poll_timestamp_seconds",
            "Time of the newest healthy record per integration, epoch s",
            labels=["integration"],
        )
        for integration, ms in sorted(self._runner.checkpoint.last_success_ms.items()):
            last.add_metric([integration], ms / 1000)
        yield from (points, events, dead, last)

    def _spools(self):
        backlog = GaugeMetricFamily("airis_mon_spool_backlog_bytes", "Unprocessed spool bytes", labels=["integration"])
        oldest = GaugeMetricFamily(
            "airis_mon_spool_oldest_age_seconds", "Age of the oldest unprocessed segment, s", labels=["integration"]
        )
        now = self._clock()
        for integration in self._runner.gateways():
            size, since = _spool_backlog(integration.spool)
            backlog.add_metric([integration.name], size)
            oldest.add_metric([integration.name], max(0.0, now - since) if since is not None else 0.0)
        lag = GaugeMetricFamily("airis_mon_watermark_lag_seconds", "Now minus the evaluation horizon, s")
        closed = self._runner.checkpoint.closed_until_ms
        lag.add_metric([], now - closed / 1000 if closed is not None else 0.0)
        yield from (backlog, oldest, lag)

    def _rules(self):
        evaluations = CounterMetricFamily("airis_mon_rule_evaluations", "(rule, group) evaluations")
        evaluations.add_metric([], self._with_prefix("rules/").get("groups_evaluated", 0))
        states = GaugeMetricFamily("airis_mon_alerts", "Groups pending or firing", labels=["alertstate"])
        summary = self._runner.summary()
        for state in ("pending", "firing"):
            states.add_metric([state], summary[state])
        emitted = CounterMetricFamily(
            "airis_mon_alert_notifications", "Alert notifications emitted", labels=["notification", "severity"]
        )
        for key, value in sorted(self._with_prefix("rules/").items()):
            kind, _, severity = key.partition("_")
            if kind in ("trigger", "repeat", "resolve"):
                emitted.add_metric([kind, severity], value)
        yield from (evaluations, states, emitted)

    def _notifications(self):
        sent = CounterMetricFamily("airis_mon_notifications", "Notifications per sink", labels=["sink", "outcome"])
        for (sink, outcome), value in sorted(self._outbox.counts.items()):
            sent.add_metric([sink, outcome], value)
        backlog = GaugeMetricFamily("airis_mon_notification_backlog", "Notifications committed, not yet delivered")
        backlog.add_metric([], self._outbox.backlog())
        yield from (sent, backlog)


def _spool_backlog(spool: str) -> tuple[int, float | None]:
    """(bytes of the unprocessed segments, epoch s since which the oldest of them waits; None without one).

    A closed segment waits since its last write (its mtime); the open one since it was opened (the time in its
    name, as the gateway's ``max_segment_age_s`` counts it), not since its last append. A segment moved to
    ``done/`` or rotated while it is listed is left out of this scrape.
    """
    size, since = 0, []
    for path in Path(spool).glob("*.jsonl"):
        if not path.name.startswith(("segment-", "open-")):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:  # processed by a cycle or rotated by the gateway meanwhile
            continue
        size += stat.st_size
        since.append(stat.st_mtime)
    try:
        opened_ms = oldest_unread_ms(spool)
    except FileNotFoundError:  # rotated meanwhile: its mtime was listed, or it is listed next scrape
        opened_ms = None
    if opened_ms is not None:
        since.append(opened_ms / 1000)
    return size, min(since, default=None)


def serve_metrics(metrics: LiveMetrics, host: str, port: int) -> tuple[object, int]:
    """Serve ``metrics`` at ``http://HOST:PORT/metrics`` in a daemon thread; returns (server, bound port)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, server.server_address[1]
