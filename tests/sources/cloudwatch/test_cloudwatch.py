"""The ``cloudwatch`` source against a real moto server (CloudWatch + SageMaker) on 127.0.0.1.

moto computes Average/Sum/Minimum/Maximum/SampleCount correctly over period-aligned
buckets; it is wrong for percentiles, metric math, list_metrics and unaligned buckets
(checked against CloudWatch's documentation), so none of those is tested here.
"""

from __future__ import annotations

import functools
import pickle
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import apache_beam as beam
import boto3
import botocore.exceptions
import pytest
from apache_beam.testing.util import assert_that, equal_to

from airis_mon.errors import PermanentError, TransientError
from airis_mon.retry import RetryConfig
from airis_mon.schema import tags_from_json
from sources.cloudwatch import CloudWatchConfig, ReadFromCloudWatch
from sources.cloudwatch.client import CloudWatchClient, MetricQuery, map_error
from sources.cloudwatch.planner import plan_window
from sources.cloudwatch.poller import CloudWatchPoller, load_last_end
from sources.polling import PollSettings

FAST = RetryConfig(max_attempts=2, initial_backoff_s=0.001, max_backoff_s=0.002)
NOW_S = int(time.time()) // 60 * 60 + 17  # 17 s into a minute
WINDOW = plan_window(None, NOW_S, 60, 600)  # the first poll's window with the defaults
STATS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url():
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def url(moto_url):
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=5).close()
    return moto_url


def aws(url: str, service: str):
    return boto3.client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def config(url: str, **overrides) -> CloudWatchConfig:
    values = {
        "name": "sm",
        "region": "us-east-1",
        "endpoint_url": url,
        "environment": "test",
        "poll": PollSettings(retry=FAST),
    }
    return CloudWatchConfig(**(values | overrides))


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    # The default boto3 chain, as configs without keys use it; never real credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


def make_poller(url: str, **overrides) -> CloudWatchPoller:
    poller = CloudWatchPoller(config(url, **overrides))
    poller.setup()
    return poller


def create_endpoints(url: str, names: list[str]) -> None:
    sagemaker = aws(url, "sagemaker")
    role = "arn:aws:iam::123456789012:role/sm"
    for name in names:
        sagemaker.create_model(
            ModelName=f"{name}-model",
            ExecutionRoleArn=role,
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{name}-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def put(
    url: str,
    endpoint: str,
    metric: str,
    at_s: int,
    values: list[float],
    unit: str = "None",
    variant: str = "AllTraffic",
) -> None:
    """One datapoint per value, a few seconds apart inside the minute starting at ``at_s``."""
    aws(url, "cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": metric,
                "Value": value,
                "Unit": unit,
                "Timestamp": datetime.fromtimestamp(at_s + 5 + 10 * i, UTC),
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
            }
            for i, value in enumerate(values)
        ],
    )


def expected(values: list[float]) -> dict[str, float]:
    return {
        "Average": sum(values) / len(values),
        "Sum": sum(values),
        "Minimum": min(values),
        "Maximum": max(values),
        "SampleCount": float(len(values)),
    }


def series(payloads: list[dict]) -> dict[tuple, float]:
    """(timestamp, endpoint, metric, statistic, unit) -> value."""
    out = {}
    for payload in payloads:
        for m in payload["metrics"]:
            key = (payload["timestamp"], m["tags"]["EndpointName"], m["name"], m["tags"]["Statistic"], m["unit"])
            assert key not in out, f"duplicate {key}"
            out[key] = m["value"]
    return out


class CallCounter:
    """Records the API parameters of each real call with botocore's ``before-parameter-build`` event hook."""

    def __init__(self, client, operation: str):
        self.params: list[dict] = []
        client.meta.events.register(f"before-parameter-build.*.{operation}", self._before)

    def _before(self, params, **_):
        self.params.append(dict(params))


# --- discovery ------------------------------------------------------------------------------------


def test_discovers_in_service_endpoints_following_pages(url):
    names = [f"ep-{i}" for i in range(5)]
    create_endpoints(url, names)
    client = CloudWatchClient("us-east-1", url, "testing", "testing")
    calls = CallCounter(client.sagemaker, "ListEndpoints")
    assert client.in_service_endpoints(page_size=2) == names
    assert len(calls.params) == 3
    assert all(p["StatusEquals"] == "InService" for p in calls.params)
    assert [("NextToken" in p) for p in calls.params] == [False, True, True]


# --- exact statistics -----------------------------------------------------------------------------


def test_statistics_of_each_endpoint_metric_match_the_datapoints(url):
    create_endpoints(url, ["churn", "fraud"])
    start, end = WINDOW
    latency = {"churn": [1200.0, 3400.0, 800.0], "fraud": [5000.0, 7000.0]}
    invocations = {"churn": [3.0, 1.0, 4.0, 1.0], "fraud": [9.0]}
    for endpoint in latency:
        put(url, endpoint, "ModelLatency", start, latency[endpoint], "Microseconds")
        put(url, endpoint, "Invocations", start, invocations[endpoint], "Count")
    put(url, "churn", "ModelLatency", end, [99999.0], "Microseconds")  # the next minute: not complete yet
    put(url, "churn", "ModelLatency", start - 60, [88888.0], "Microseconds")  # before the window
    put(url, "churn", "ModelLatency", start, [77777.0], "Microseconds", variant="Canary")  # another variant

    payloads = make_poller(url, metrics=["Invocations", "ModelLatency"]).poll(NOW_S * 1000)

    want = {}
    for endpoint in latency:
        for stat, value in expected(latency[endpoint]).items():
            want[(start, endpoint, "ModelLatency", stat, "Microseconds")] = value
        for stat, value in expected(invocations[endpoint]).items():
            want[(start, endpoint, "Invocations", stat, "Count")] = value
    assert series(payloads) == pytest.approx(want)
    assert [(p["timestamp"], p["source"], len(p["metrics"])) for p in payloads] == [
        (start, "aws_sagemaker", 10),
        (start, "aws_sagemaker", 10),
    ]  # one payload per timestamp per endpoint
    tags = payloads[0]["metrics"][0]["tags"]
    assert tags.keys() == {"EndpointName", "VariantName", "Statistic", "environment"}
    assert (tags["VariantName"], tags["environment"]) == ("AllTraffic", "test")


def test_configured_endpoints_are_not_discovered(url):
    create_endpoints(url, ["churn"])
    start, _ = WINDOW
    put(url, "manual", "Invocation5XXErrors", start, [2.0, 3.0])
    poller = make_poller(url, endpoint_names=["manual"], metrics=["Invocation5XXErrors"], statistics=["Sum"])
    calls = CallCounter(poller._client.sagemaker, "ListEndpoints")
    payloads = poller.poll(NOW_S * 1000)
    assert series(payloads) == {(start, "manual", "Invocation5XXErrors", "Sum", "Count"): 5.0}
    assert calls.params == []


# --- batching and paging --------------------------------------------------------------------------


def test_more_than_500_queries_are_batched_by_500(url):
    start, _ = WINDOW
    names = [f"ep-{i:02d}" for i in range(21)]  # 21 x 5 metrics x 5 statistics = 525 queries
    put(url, "ep-20", "OverheadLatency", start, [10.0, 30.0], "Microseconds")  # lands in the second call
    put(url, "ep-00", "Invocations", start, [7.0])
    poller = make_poller(url, endpoint_names=names)
    calls = CallCounter(poller._client.cloudwatch, "GetMetricData")
    payloads = poller.poll(NOW_S * 1000)

    batches = [p["MetricDataQueries"] for p in calls.params]
    assert [len(b) for b in batches] == [500, 25]
    ids = [q["Id"] for b in batches for q in b]
    assert ids == [f"q{i}" for i in range(525)]
    assert {p["ScanBy"] for p in calls.params} == {"TimestampAscending"}
    query = batches[0][0]["MetricStat"]
    assert query["Metric"]["Namespace"] == "AWS/SageMaker" and query["Period"] == 60
    assert query["Metric"]["Dimensions"] == [
        {"Name": "EndpointName", "Value": "ep-00"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    got = series(payloads)
    assert {k: v for k, v in got.items() if k[1] == "ep-20"} == {
        (start, "ep-20", "OverheadLatency", stat, "Microseconds"): value
        for stat, value in expected([10.0, 30.0]).items()
    }
    assert got[(start, "ep-00", "Invocations", "Sum", "Count")] == 7.0
    assert len(got) == 10


def test_next_token_is_followed_until_done(url):
    """moto answers in one page; a hook on the real client's parsed responses splits moto's real
    answer into two pages (the first carrying a NextToken) to check that the token is sent back."""
    start, _ = WINDOW
    for i, endpoint in enumerate(["a", "b", "c"]):
        put(url, endpoint, "Invocations", start, [float(i + 1), 10.0])
    poller = make_poller(url, endpoint_names=["a", "b", "c"], metrics=["Invocations"], statistics=["Sum"])
    cloudwatch = poller._client.cloudwatch
    calls = CallCounter(cloudwatch, "GetMetricData")

    def split(http_response, parsed, **_):
        results = parsed["MetricDataResults"]
        if "NextToken" not in calls.params[-1]:
            parsed["MetricDataResults"], parsed["NextToken"] = results[:2], "page-2"
        else:
            parsed["MetricDataResults"] = results[2:]

    cloudwatch.meta.events.register("after-call.*.GetMetricData", split)
    payloads = poller.poll(NOW_S * 1000)
    assert [p.get("NextToken") for p in calls.params] == [None, "page-2"]
    assert series(payloads) == {
        (start, e, "Invocations", "Sum", "Count"): v for e, v in (("a", 11.0), ("b", 12.0), ("c", 13.0))
    }


def test_the_backfill_table_holds_exactly_the_live_payloads_points(url):
    """The bulk Arrow path (backfills) and the payload path (live polls) give the same series and values,
    also when one query's datapoints arrive over two pages."""
    start, end = WINDOW
    for minute in range(3):
        put(url, "a", "ModelLatency", start - 120 + minute * 60, [1000.0 * (minute + 1), 500.0], "Microseconds")
        put(url, "b", "Invocations", start - 120 + minute * 60, [float(minute)])
    poller = make_poller(url, endpoint_names=["a", "b"], metrics=["Invocations", "ModelLatency"])
    queries = poller.queries()

    def split(http_response, parsed, **_):  # each result's datapoints over two pages
        if parsed.get("MetricDataResults") and "NextToken" not in calls.params[-1]:
            parsed["MetricDataResults"] = [dict(r, Timestamps=r["Timestamps"][:1], Values=r["Values"][:1])
                                           for r in parsed["MetricDataResults"]]  # fmt: skip
            parsed["NextToken"] = "rest"
        elif parsed.get("MetricDataResults"):
            parsed["MetricDataResults"] = [dict(r, Timestamps=r["Timestamps"][1:], Values=r["Values"][1:])
                                           for r in parsed["MetricDataResults"]]  # fmt: skip

    live = series(poller.fetch(queries, start - 120, end, 60))
    calls = CallCounter(poller._client.cloudwatch, "GetMetricData")
    poller._client.cloudwatch.meta.events.register("after-call.*.GetMetricData", split)
    table = poller.fetch_table(queries, start - 120, end, 60)
    assert len(calls.params) == 2
    rows = table.to_pylist()
    tags = [tags_from_json(r["tags"]) for r in rows]
    from_table = {
        (int(r["timestamp"]), t["EndpointName"], r["name"], t["Statistic"], r["unit"]): r["value"]
        for r, t in zip(rows, tags, strict=True)
    }
    assert len(from_table) == len(rows) == 3 * 5 * 2  # 3 minutes x 5 statistics x 2 (endpoint, metric) series
    assert from_table == live
    assert {r["source"] for r in rows} == {"aws_sagemaker"}
    assert [r["timestamp"] for r in rows[:3]] == [start - 120.0, start - 60.0, start]  # time order within a series
    assert from_table[(start - 60, "a", "ModelLatency", "Average", "Microseconds")] == 1250.0


# --- the live window ------------------------------------------------------------------------------


def test_two_polls_never_count_a_datapoint_twice(url):
    start, end = WINDOW
    put(url, "churn", "Invocations", start, [1.0, 2.0])
    put(url, "churn", "Invocations", end, [4.0])  # the next minute: complete only for the second poll
    put(url, "churn", "Invocations", end + 60, [8.0])  # not complete for either
    poller = make_poller(url, endpoint_names=["churn"], metrics=["Invocations"], statistics=["Sum", "SampleCount"])

    first = series(poller.poll(NOW_S * 1000))
    again = poller.poll(NOW_S * 1000 + 20_000)  # same minute: nothing new is old enough
    second = series(poller.poll((NOW_S + 60) * 1000))

    assert first == {
        (start, "churn", "Invocations", "Sum", "Count"): 3.0,
        (start, "churn", "Invocations", "SampleCount", "Count"): 2.0,
    }
    assert again == []
    assert second == {
        (end, "churn", "Invocations", "Sum", "Count"): 4.0,
        (end, "churn", "Invocations", "SampleCount", "Count"): 1.0,
    }


def test_the_state_file_carries_the_window_across_pollers(url, tmp_path):
    start, end = WINDOW
    state = str(tmp_path / "state" / "cw.json")
    put(url, "churn", "Invocations", start, [1.0])
    put(url, "churn", "Invocations", end, [5.0])
    settings = {"endpoint_names": ["churn"], "metrics": ["Invocations"], "statistics": ["Sum"], "state_file": state}

    first = series(make_poller(url, **settings).poll(NOW_S * 1000))
    assert load_last_end(state) == end
    repeated = make_poller(url, **settings).poll(NOW_S * 1000)  # a new pipeline run, same minute
    later = series(make_poller(url, **settings).poll((NOW_S + 60) * 1000))

    assert first == {(start, "churn", "Invocations", "Sum", "Count"): 1.0}
    assert repeated == []
    assert later == {(end, "churn", "Invocations", "Sum", "Count"): 5.0}
    assert load_last_end(state) == end + 60


def test_a_corrupt_state_file_is_a_permanent_error(url, tmp_path):
    state = tmp_path / "cw.json"
    state.write_text("{not json", encoding="utf-8")
    with pytest.raises(PermanentError, match="not a cloudwatch state file"):
        make_poller(url, endpoint_names=["x"], state_file=str(state)).poll(NOW_S * 1000)


# --- errors ---------------------------------------------------------------------------------------


def test_an_unreachable_endpoint_is_transient():
    with pytest.raises(TransientError, match="GetMetricData"):
        make_poller(f"http://127.0.0.1:{_free_port()}", endpoint_names=["x"]).poll(NOW_S * 1000)


def test_a_validation_error_from_the_server_is_permanent(url):
    client = CloudWatchClient("us-east-1", url, "testing", "testing")
    with pytest.raises(PermanentError, match="GetMetricData"):
        client.metric_data([MetricQuery("x", "AllTraffic", "Invocations", "Sum")], 1200, 1200, 60)


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    response = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "GetMetricData")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_client_error("Throttling", 400), TransientError),
        (_client_error("ThrottlingException", 400), TransientError),
        (_client_error("SlowDown", 429), TransientError),
        (_client_error("InternalServiceError", 500), TransientError),
        (_client_error("ServiceUnavailable", 503), TransientError),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TransientError),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), TransientError),
        (_client_error("AccessDenied", 403), PermanentError),
        (_client_error("AccessDeniedException", 400), PermanentError),
        (_client_error("UnrecognizedClientException", 400), PermanentError),
        (_client_error("InvalidParameterValue", 400), PermanentError),
        (_client_error("ValidationError", 400), PermanentError),
        (botocore.exceptions.NoCredentialsError(), PermanentError),
    ],
)
def test_error_mapping(error, kind):
    mapped = map_error(error, "cloudwatch GetMetricData")
    assert type(mapped) is kind
    assert str(mapped).startswith("cloudwatch GetMetricData: ")


def test_config_checks():
    with pytest.raises(ValueError, match="multiple of 60"):
        CloudWatchConfig(name="x", region="us-east-1", period_s=90)
    with pytest.raises(ValueError, match="go together"):
        CloudWatchConfig(name="x", region="us-east-1", access_key_id={"env": "AWS_ACCESS_KEY_ID"})
    with pytest.raises(ValueError):
        CloudWatchConfig(name="x", region="us-east-1", statistics=["p99"])


# --- end to end -----------------------------------------------------------------------------------


def _rows(table):
    columns = [table.column(c).to_pylist() for c in ("name", "value", "unit", "tags")]
    for name, value, unit, tags in zip(*columns, strict=True):
        tags = tags_from_json(tags) if isinstance(tags, str) else dict(tags)
        yield (
            name,
            value,
            unit,
            tags.get("EndpointName", tags.get("endpoint_name")),
            tags.get("Statistic", tags.get("statistic")),
        )


@pytest.mark.slow
def test_end_to_end_through_a_pipeline(url, tmp_path):
    create_endpoints(url, ["churn"])
    # The pipeline polls at wall-clock time: the same values in this window and the next one, so that a
    # poll that crosses a minute boundary reads the same numbers.
    start, _ = plan_window(None, int(time.time()), 60, 600)
    for at in (start, start + 60):
        put(url, "churn", "ModelLatency", at, [1000.0, 3000.0], "Microseconds")
    cfg = config(url, metrics=["ModelLatency"], statistics=["Average", "SampleCount"])
    pickle.dumps(functools.partial(CloudWatchPoller, cfg))

    with beam.Pipeline() as pipeline:
        out = pipeline | "Read" >> ReadFromCloudWatch(cfg)
        assert_that(
            out["points"] | beam.FlatMap(_rows),
            equal_to(
                [
                    ("ModelLatency", 2000.0, "Microseconds", "churn", "Average"),
                    ("ModelLatency", 2.0, "Microseconds", "churn", "SampleCount"),
                ]
            ),
            label="points",
        )
        health = out["health"] | beam.Map(lambda h: (h.integration, h.ok, h.records))
        assert_that(health, equal_to([("sm", True, 2)]), label="health")
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")


@pytest.mark.slow
def test_an_unreachable_endpoint_is_an_unhealthy_record_not_a_crash():
    cfg = config(f"http://127.0.0.1:{_free_port()}")
    with beam.Pipeline() as pipeline:
        out = pipeline | ReadFromCloudWatch(cfg)
        health = out["health"] | beam.Map(lambda h: (h.integration, h.ok, "sagemaker list_endpoints" in h.message))
        assert_that(health, equal_to([("sm", False, True)]), label="health")
        assert_that(out["points"], equal_to([]), label="points")
