import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.schema import HealthRecord
from transforms.health import BuildHealthReport, health_report

T = 1_795_824_000_000


def record(integration, ok, message="m", at=T, records=1):
    return HealthRecord(at, integration, ok, message, 5.0, -1, records)


def test_all_ok_is_healthy():
    report = health_report([record("mlflow", True), record("mlflow", True, at=T + 1000, records=3)])
    assert report["overall_status"] == "healthy"
    assert report["timestamp"] == "2026-11-28T00:00:01.000Z"
    assert report["integrations"]["mlflow"] == {
        "status": "healthy",
        "message": "m",
        "checks": 2,
        "failed_checks": 0,
        "records": 4,
        "last_check": "2026-11-28T00:00:01.000Z",
    }


def test_one_failure_degrades_the_integration_and_the_whole_report_with_its_message():
    report = health_report(
        [record("github", True, "ok"), record("github", False, "HTTP 403 rate limited", at=T + 5), record("ldap", True)]
    )
    assert report["overall_status"] == "degraded"
    assert report["integrations"]["github"]["status"] == "degraded"
    assert report["integrations"]["github"]["message"] == "HTTP 403 rate limited"
    assert report["integrations"]["ldap"]["status"] == "healthy"


def test_no_records_is_an_empty_healthy_report():
    assert health_report([], now_ms=T) == {
        "timestamp": "2026-11-28T00:00:00.000Z",
        "overall_status": "healthy",
        "integrations": {},
    }


def test_build_health_report_transform():
    with TestPipeline() as pipeline:
        reports = pipeline | beam.Create([record("a", True), record("b", False)]) | BuildHealthReport()
        assert_that(
            reports | beam.Map(lambda r: (r["overall_status"], sorted(r["integrations"]))),
            equal_to([("degraded", ["a", "b"])]),
        )
