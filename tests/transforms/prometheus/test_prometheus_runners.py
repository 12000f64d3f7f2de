"""Every promtool oracle case through the real Beam runners: batch (``EvaluateRules``, as backtests run it)
and streaming (``EvaluateRulesStreaming``, state and timers), all cases in one pipeline each (one source per
case); each gives the first-firing and resolve instants promtool confirmed."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that
from apache_beam.transforms.window import TimestampedValue

from airis_mon.schema import Metric, metrics_to_table
from tests.transforms.prometheus.test_promtool_oracle import CASES, MIN, T0, Case, _imported, _instants, _parse_series
from tests.transforms.rules.test_streaming import at, streaming_options
from transforms.aggregate import aggregate_table
from transforms.rules.batch import EvaluateRules
from transforms.rules.streaming import EvaluateRulesStreaming

RULES = [_imported(case).model_copy(update={"source": case.name}) for case in CASES]


def _points(case: Case, minute: int | None = None) -> list[Metric]:
    points = []
    for name, values in case.series.items():
        metric, labels = _parse_series(name)
        tags = json.dumps(labels, sort_keys=True, separators=(",", ":"))
        for i, value in enumerate(values):
            if value is not None and minute in (None, i):
                points.append(Metric(T0 + i * MIN, case.name, metric, float(value), "", tags))
    return points


def _table(points: list[Metric]) -> pa.Table:
    return aggregate_table(metrics_to_table(points), MIN)


def _check(lines: list[list]) -> None:
    by_case: dict[str, list] = {case.name: [] for case in CASES}
    for source, notification, timestamp_ms in lines:
        by_case[source].append(_Alert(notification, timestamp_ms))
    got = {name: _instants(alerts) for name, alerts in by_case.items()}
    assert got == {case.name: {"fire": case.fire, "resolve": case.resolve} for case in CASES}


class _Alert:
    def __init__(self, notification: str, timestamp_ms: int):
        self.notification, self.timestamp_ms = notification, timestamp_ms


def _read(tmp_path) -> list[list]:
    return [json.loads(line) for p in tmp_path.glob("alerts*") for line in p.read_text().splitlines()]


def _as_line(alert) -> str:
    return json.dumps([alert.source, alert.notification, alert.timestamp_ms])


def test_batch_runner_matches_promtool(tmp_path):
    tables = [_table(_points(case)) for case in CASES]
    with TestPipeline() as pipeline:
        _ = (
            pipeline
            | beam.Create(tables)
            | EvaluateRules(RULES, 60, until_ms=T0 + 14 * MIN)
            | beam.Map(_as_line)
            | beam.io.WriteToText(str(tmp_path / "alerts"))
        )
    _check(_read(tmp_path))


def test_streaming_runner_matches_promtool():
    stream = TestStream()
    for minute in range(14):
        points = [p for case in CASES for p in _points(case, minute)]
        stream = stream.add_elements([TimestampedValue(_table(points), at(minute + 1))])
        stream = stream.advance_watermark_to(at(minute + 1))
    with TestPipeline(options=streaming_options()) as pipeline:
        outputs = pipeline | stream | EvaluateRulesStreaming(RULES, 60)
        assert_that(outputs["alerts"] | beam.Map(lambda a: [a.source, a.notification, a.timestamp_ms]), _check)
