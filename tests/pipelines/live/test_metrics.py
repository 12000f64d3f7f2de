"""The live runner's ``GET /metrics``, scraped with the project's own ``prometheus`` source.

A live runner over two gateway spools and one polled integration runs three cycles (an alert fires, a second
group goes pending, then the first resolves while the second fires); the outbox delivers to a notification log
and to a Slack webhook that answers 500 and then 400 (one retry, then a dead letter). :class:`LiveMetrics`
is served with :func:`serve_metrics` and read by :class:`~sources.prometheus.poller.PrometheusPoller` (the poller
``ReadFromPrometheus`` runs), once before the first cycle and once after each, with its clock 10 s apart, and
once by ``ReadFromPrometheus`` itself in a bounded Beam pipeline.

The source turns counters into per-second rates between two scrapes of the same series (none on the first
scrape, nor for a series that first appears), so a counter is checked as ``increase / 10 s`` between scrapes:
each cycle's points, events, dead letters, evaluations and deliveries. Gauges are checked as they are.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from airis_mon.config import load_config
from airis_mon.retry import RetryConfig
from pipelines.live.metrics import LiveMetrics, serve_metrics
from pipelines.live.outbox import Outbox
from pipelines.live.runner import LiveRunner
from pipelines.main import notification_sinks
from sources.gateway.spool import SpoolWriter, closed_segments
from sources.prometheus import PrometheusConfig, ReadFromPrometheus
from sources.prometheus.poller import PrometheusPoller
from tests.conftest import DAY_MS
from tests.sinks.receivers import Receiver, scripted
from tests.sources.prometheus.exposition_server import ExpositionServer

pytestmark = pytest.mark.slow

T0 = DAY_MS + 6 * 3_600_000  # 2026-11-28T06:00:00Z: the stream's minute 0
MINUTE = 60_000
SECOND = 1000
FAST = RetryConfig(max_attempts=2, initial_backoff_s=0.001, max_backoff_s=0.002)
SLACK_ENV = "AIRIS_TEST_METRICS_SLACK_WEBHOOK"

CONFIG = """
integrations:
  - {name: api, type: gateway, spool: ./spool-api}
  - {name: edge, type: gateway, spool: ./spool-edge}
  - {name: vllm, type: prometheus, source: vllm, targets: [{url: "VLLM_URL"}], include: ["vllm:num_requests_running"]}
aggregation: {window_seconds: 60}
live: {allowed_lateness: 10s, metrics_port: 0}
rules:
  - {name: latency, metric: inference_latency, aggregation: p95, comparator: ">", threshold: 250, for: 2,
     severity: high, group_by: [model_name]}
sinks:
  - {name: storage, type: parquet, path: out}
  - {name: feed, type: notification_log}
  - name: oncall
    type: slack
    webhook_url: {env: SLACK_ENV}
    delivery: {rate_limit_per_s: null, retry: {max_attempts: 3, initial_backoff_s: 0.01, max_backoff_s: 0.02}}
default_route: {sinks: [feed, oncall]}
"""

#: A poll of the ``vllm`` integration: its one included gauge, plus the source's ``up`` and ``scrape_duration_seconds``.
VLLM_POINTS = 3


def _minute(source: str, model: str, minute: int, value: float) -> list[dict]:
    """Four points (every 15 s) of ``inference_latency`` for ``model`` in ``minute`` of the stream."""
    return [
        {"timestamp": T0 + minute * MINUTE + s * SECOND, "source": source,
         "metrics": [{"name": "inference_latency", "value": value, "unit": "ms", "tags": {"model_name": model}}]}
        for s in (0, 15, 30, 45)
    ]  # fmt: skip


def _api(minute: int, fraud: float, churn: float) -> list[dict]:
    return _minute("tensorflow_serving", "fraud", minute, fraud) + _minute("tensorflow_serving", "churn", minute, churn)


def _edge(minute: int) -> list[dict]:
    return _minute("torchserve", "ranker", minute, 30.0)


#: Neither a metrics payload nor an event: a dead letter of component ``gateway:api`` (and an unhealthy source).
BAD = {"timestamp": T0 + 30 * SECOND, "source": "broken-client"}
EVENT = {"timestamp": T0 + 30 * SECOND, "event_type": "model_version_status", "source": "mlflow", "severity": "info",
         "data": {"model_name": "fraud", "version": "7", "change": "alias_set", "alias": "champion"}}  # fmt: skip


class _Clock:
    """The scraping poller's clock (rates are per second of it)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _label_key(tags: dict[str, str]) -> str:
    """The metric's own labels as ``k=v,k=v`` (without the target's ``instance`` and ``job``)."""
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()) if k not in ("instance", "job"))


def _by_name(points: list[dict]) -> dict[str, dict[str, float]]:
    """{point name: {labels: value}}."""
    out: dict[str, dict[str, float]] = {}
    for point in points:
        series = out.setdefault(point["name"], {})
        key = _label_key(json.loads(point["tags"]) if isinstance(point["tags"], str) else point["tags"])
        assert key not in series, f"{point['name']}{{{key}}} twice in one scrape"
        series[key] = point["value"]
    return out


class _Scraper:
    """The ``prometheus`` source's poller on /metrics, its clock moved 10 s before each scrape."""

    def __init__(self, config: PrometheusConfig):
        self.clock = _Clock()
        self.poller = PrometheusPoller(config, clock=self.clock)
        self.poller.setup()
        self.instance = config.targets[0].tags()["instance"]

    def scrape(self) -> dict[str, dict[str, float]]:
        self.clock.now += 10.0
        payloads = self.poller.poll(int(self.clock.now * 1000))
        assert [p["source"] for p in payloads] == ["airis-mon"]
        points = payloads[0]["metrics"]
        assert {(p["tags"]["instance"], p["tags"]["job"]) for p in points} == {(self.instance, "airis-mon")}
        return _by_name(points)


def _scrape_through_beam(config: PrometheusConfig, folder: Path) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """One bounded ``ReadFromPrometheus`` run: its points by name, and its health records."""
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        out = pipeline | ReadFromPrometheus(config, bounded=True)
        _ = (
            out["points"]
            | "Rows" >> beam.FlatMap(lambda table: table.to_pylist())
            | "PointJson" >> beam.Map(json.dumps)
            | "WritePoints" >> beam.io.WriteToText(str(folder / "points"), shard_name_template="")
        )
        _ = (
            out["health"]
            | "HealthJson" >> beam.Map(lambda record: json.dumps(record._asdict()))
            | "WriteHealth" >> beam.io.WriteToText(str(folder / "health"), shard_name_template="")
        )
    points = [json.loads(line) for line in (folder / "points").read_text().splitlines()]
    health = [json.loads(line) for line in (folder / "health").read_text().splitlines()]
    return _by_name(points), health


def _newest_s(payloads: list[dict]) -> float:
    return max(p["timestamp"] for p in payloads) / 1000


def test_metrics_scraped_with_the_prometheus_source(tmp_path, monkeypatch):
    with (
        ExpositionServer({"/metrics": ["vllm_1.prom"]}) as vllm,
        Receiver(scripted(*[(500, {}, b"internal_error"), (400, {}, b"invalid_payload")] * 3)) as slack,
    ):
        monkeypatch.setenv(SLACK_ENV, f"{slack.url}/services/T000/B000/XXXX")
        text = CONFIG.replace("VLLM_URL", f"{vllm.url}/metrics").replace("SLACK_ENV", SLACK_ENV)
        (tmp_path / "config.yaml").write_text(text)
        config = load_config(tmp_path / "config.yaml")
        output = str(tmp_path / "out")
        runner = LiveRunner(config, output)
        outbox = Outbox({s.name: s for s in notification_sinks(config, output)}, runner.state_dir, runner.output)
        metrics = LiveMetrics(runner, outbox)
        server, port = serve_metrics(metrics, "127.0.0.1", 0)
        try:
            scrape_config = PrometheusConfig.model_validate({
                "name": "self", "source": "airis-mon", "poll": {"retry": FAST},
                "targets": [{"url": f"http://127.0.0.1:{port}/metrics", "labels": {"job": "airis-mon"}}],
            })  # fmt: skip
            scraper = _Scraper(scrape_config)
            try:
                _scenario(runner, outbox, metrics, scraper, scrape_config, tmp_path)
            finally:
                scraper.poller.teardown()
        finally:
            server.shutdown()
            server.server_close()
        assert len(slack.requests) == 6  # 3 notifications, each: 500 (retried), then 400 (dead-lettered)


def _open_bytes(writer: SpoolWriter) -> int:
    """The size of the writer's open segment (bytes)."""
    return sum(path.stat().st_size for path in writer.directory.glob("open-*.jsonl"))


def _cycle(runner: LiveRunner, metrics: LiveMetrics, now_ms: int) -> tuple[float, float]:
    """One cycle recorded as ``pipelines.serve`` records it; returns its wall-clock (start, end), s."""
    began = time.time()
    report = runner.run_cycle(now_ms=now_ms)
    metrics.record_cycle(report.counters, report.seconds)
    return began, time.time()


def _scenario(runner: LiveRunner, outbox: Outbox, metrics: LiveMetrics, scraper: _Scraper,
              scrape_config: PrometheusConfig, folder: Path) -> None:  # fmt: skip
    api = SpoolWriter(runner.gateways()[0].spool)
    edge = SpoolWriter(runner.gateways()[1].spool, max_segment_age_s=3600)

    # --- minutes 0-3: fraud breaches from minute 1 (pending, then firing with `for: 2`) -------------------------
    phase1_api = [p for m, fraud in enumerate([40.0, 420.0, 420.0, 420.0]) for p in _api(m, fraud, 55.0)]
    phase1_edge = [p for m in range(4) for p in _edge(m)]
    written = time.time()
    api.append([*phase1_api, EVENT, BAD])
    edge.append(phase1_edge)
    api.close()
    edge.close()
    api_bytes, edge_bytes = (sum(p.stat().st_size for p in closed_segments(w.directory)) for w in (api, edge))

    s0 = scraper.scrape()  # before any cycle: the closed segments wait
    assert s0["airis_mon_spool_backlog_bytes"] == {"integration=api": api_bytes, "integration=edge": edge_bytes}
    assert s0["airis_mon_spool_backlog_bytes"]["integration=api"] > 0
    assert all(0 <= age <= time.time() - written for age in s0["airis_mon_spool_oldest_age_seconds"].values())
    assert s0["airis_mon_alerts"] == {"alertstate=pending": 0.0, "alertstate=firing": 0.0}
    assert s0["airis_mon_watermark_lag_seconds"] == {"": 0.0}  # nothing evaluated yet
    assert s0["airis_mon_notification_backlog"] == {"": 0.0}
    assert "airis_mon_last_successful_poll_timestamp_seconds" not in s0  # no record read yet
    assert not [name for name in s0 if name.endswith("_rate")]  # first scrape: counters give no rate yet

    start1, end1 = _cycle(runner, metrics, now_ms=T0 + 4 * MINUTE + 15 * SECOND)  # evaluates minutes 0-3
    assert outbox.deliver_pending() == 2  # the fraud trigger, to both sinks
    before = time.time()
    s1 = scraper.scrape()
    after = time.time()
    assert s1["airis_mon_spool_backlog_bytes"] == {"integration=api": 0.0, "integration=edge": 0.0}
    assert s1["airis_mon_spool_oldest_age_seconds"] == {"integration=api": 0.0, "integration=edge": 0.0}
    closed_s = (T0 + 4 * MINUTE) / 1000
    assert before - closed_s <= s1["airis_mon_watermark_lag_seconds"][""] <= after - closed_s
    assert runner.summary()["pending"] == 0 and runner.summary()["firing"] == 1
    assert s1["airis_mon_alerts"] == {"alertstate=pending": 0.0, "alertstate=firing": 1.0}
    last_poll = s1["airis_mon_last_successful_poll_timestamp_seconds"]
    assert set(last_poll) == {"integration=tensorflow_serving", "integration=torchserve", "integration=mlflow",
                              "integration=vllm",  # not broken-client: its only record was rejected
                              "integration=api", "integration=edge"}  # the gateways' own lines  # fmt: skip
    assert last_poll["integration=tensorflow_serving"] == _newest_s(phase1_api)
    assert last_poll["integration=torchserve"] == _newest_s(phase1_edge)
    assert last_poll["integration=mlflow"] == EVENT["timestamp"] / 1000
    assert start1 <= last_poll["integration=vllm"] <= end1  # polled during the cycle
    # counters that existed at the first scrape: 1 cycle, 3 (rule, group) evaluations (fraud, churn, ranker)
    assert s1["airis_mon_cycles_rate"] == {"": pytest.approx(1 / 10)}
    assert s1["airis_mon_cycle_failures_rate"] == {"": 0.0}
    assert s1["airis_mon_rule_evaluations_rate"] == {"": pytest.approx(3 / 10)}
    assert "airis_mon_points_in_rate" not in s1  # the series first appeared in this scrape
    assert s1["airis_mon_last_cycle_seconds"][""] == pytest.approx(end1 - start1, abs=0.5)

    # --- minute 4: churn breaches (pending), one more bad line ---------------------------------------------------
    phase2_api = _api(4, 420.0, 500.0)
    api.append([*phase2_api, BAD])
    edge.append(_edge(4))
    api.close()
    edge.close()
    _cycle(runner, metrics, now_ms=T0 + 5 * MINUTE + 15 * SECOND)
    assert outbox.deliver_pending() == 0
    s2 = scraper.scrape()
    assert runner.summary()["pending"] == 1 and runner.summary()["firing"] == 1
    assert s2["airis_mon_alerts"] == {"alertstate=pending": 1.0, "alertstate=firing": 1.0}
    # what this cycle read, per second of the 10 s between the scrapes
    assert s2["airis_mon_points_in_rate"] == pytest.approx(
        {"integration=api": len(phase2_api) / 10, "integration=edge": 4 / 10, "integration=vllm": VLLM_POINTS / 10}
    )
    assert s2["airis_mon_events_in_rate"] == {"integration=api": 0.0}
    assert s2["airis_mon_dead_letters_rate"] == {"component=gateway": pytest.approx(1 / 10)}  # the bad line
    assert s2["airis_mon_rule_evaluations_rate"] == {"": pytest.approx(3 / 10)}
    assert s2["airis_mon_notifications_rate"] == {
        "outcome=delivered,sink=feed": 0.0, "outcome=retried,sink=feed": 0.0,
        "outcome=dead_lettered,sink=oncall": 0.0, "outcome=retried,sink=oncall": 0.0,
    }  # fmt: skip
    assert s2["airis_mon_alert_notifications_rate"] == {"notification=trigger,severity=high": 0.0}
    assert s2["airis_mon_last_successful_poll_timestamp_seconds"]["integration=tensorflow_serving"] == _newest_s(
        phase2_api
    )

    # --- minute 5: fraud recovers (resolve), churn fires (trigger); one segment is left open ---------------------
    phase3_api = _api(5, 40.0, 500.0)
    api.append(phase3_api)
    edge.append(_edge(5))
    api.close()
    edge.close()
    opened_after = time.time()
    edge.append(_edge(6)[:2])  # still in the open segment: not read by the cycle
    left_open = _open_bytes(edge)
    opened_by = time.time()
    start3, end3 = _cycle(runner, metrics, now_ms=T0 + 6 * MINUTE + 15 * SECOND)

    # the bounded Beam source, before delivery: one scrape gives the gauges and no counter rate
    beam_points, health = _scrape_through_beam(scrape_config, folder)
    assert [(h["integration"], h["ok"]) for h in health] == [("self", True)]
    assert not [name for name in beam_points if name.endswith("_rate")]
    assert beam_points["airis_mon_notification_backlog"] == {"": 4.0}  # 2 notifications x 2 sinks, committed
    assert beam_points["airis_mon_alerts"] == {"alertstate=pending": 0.0, "alertstate=firing": 1.0}
    assert beam_points["airis_mon_spool_backlog_bytes"] == {"integration=api": 0.0, "integration=edge": left_open}
    assert beam_points["up"] == {"": 1.0}

    assert outbox.deliver_pending() == 4
    edge.append(_edge(6)[2:])  # the open segment grows (its mtime is now; its age is not)
    left_open = _open_bytes(edge)
    before = time.time()
    s3 = scraper.scrape()
    after = time.time()
    assert runner.summary()["pending"] == 0 and runner.summary()["firing"] == 1
    assert s3["airis_mon_alerts"] == {"alertstate=pending": 0.0, "alertstate=firing": 1.0}
    assert s3["airis_mon_notification_backlog"] == {"": 0.0}
    assert s3["airis_mon_spool_backlog_bytes"] == {"integration=api": 0.0, "integration=edge": left_open}
    age = s3["airis_mon_spool_oldest_age_seconds"]
    assert age["integration=api"] == 0.0
    # the open segment's age counts from when it was opened (a cycle and a Beam scrape ago), not its last write
    assert before - opened_by <= age["integration=edge"] <= after - opened_after
    assert age["integration=edge"] > end3 - start3
    closed_s = (T0 + 6 * MINUTE) / 1000
    assert before - closed_s <= s3["airis_mon_watermark_lag_seconds"][""] <= after - closed_s
    assert s3["airis_mon_points_in_rate"] == pytest.approx(
        {"integration=api": len(phase3_api) / 10, "integration=edge": 4 / 10, "integration=vllm": VLLM_POINTS / 10}
    )
    assert s3["airis_mon_dead_letters_rate"] == {"component=gateway": 0.0}
    assert s3["airis_mon_cycles_rate"] == {"": pytest.approx(1 / 10)}
    # two notifications (the fraud resolve, the churn trigger) to each sink: the log delivered both; Slack
    # answered each with 500 (one retry) and then 400 (dead-lettered)
    assert s3["airis_mon_notifications_rate"] == pytest.approx({
        "outcome=delivered,sink=feed": 2 / 10, "outcome=retried,sink=feed": 0.0,
        "outcome=dead_lettered,sink=oncall": 2 / 10, "outcome=retried,sink=oncall": 2 / 10,
    })  # fmt: skip
    assert s3["airis_mon_alert_notifications_rate"] == {"notification=trigger,severity=high": pytest.approx(1 / 10)}
    last_poll = s3["airis_mon_last_successful_poll_timestamp_seconds"]
    assert last_poll["integration=tensorflow_serving"] == _newest_s(phase3_api)
    assert start3 <= last_poll["integration=vllm"] <= end3
    history = [json.loads(line) for line in Path(outbox.history).read_text().splitlines()]
    assert (
        sorted((h["sink"], h["outcome"]) for h in history)
        == [("feed", "delivered")] * 3 + [("oncall", "dead_lettered")] * 3
    )
