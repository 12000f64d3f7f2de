"""The same engine alerts on integration health: three failed polls in a row."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.schema import HealthRecord
from tests.transforms.rules.scenarios import MIN, T0, threshold_rule
from transforms.aggregate import Aggregate
from transforms.health import HEALTH_METRIC, HEALTH_SOURCE, HealthAsMetrics
from transforms.rules.batch import EvaluateRules

# one poll a minute; github fails at minutes 3-5 (three in a row), mlflow fails twice, apart
POLLS = [
    HealthRecord(T0 + m * MIN + 5_000, name, not failed, "HTTP 503" if failed else "ok", 12.0, -1, 10)
    for m in range(10)
    for name, failed in (("github", 3 <= m <= 5), ("mlflow", m in (2, 4)))
]


def test_an_integration_failing_three_polls_in_a_row_raises_an_alert():
    rule = threshold_rule(
        name="integration_failing", metric=HEALTH_METRIC, source=HEALTH_SOURCE, group_by=["integration"],
        aggregation="max", comparator=">=", threshold=1, severity="warning", **{"for": 3},
    )  # fmt: skip
    with TestPipeline() as pipeline:
        alerts = (
            pipeline
            | beam.Create(POLLS)
            | HealthAsMetrics()
            | Aggregate(window_seconds=60, num_shards=2)
            | EvaluateRules([rule], window_seconds=60)
        )
        assert_that(
            alerts | beam.Map(lambda a: (a.group, a.notification, (a.timestamp_ms - T0) // MIN)),
            equal_to([('{"integration":"github"}', "trigger", 6), ('{"integration":"github"}', "resolve", 6)]),
        )
