"""The BigQuery storage sink, with no network: derived schemas, row conversion, Beam's own row encoders,
and a DataflowRunner dry run that translates the whole write without submitting it.

Every test runs behind a guard that refuses (and reports) any connection or name lookup beyond loopback,
so none can reach Google.
"""

from __future__ import annotations

import io
import json
import math
import socket
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import fastavro
import pyarrow as pa
import pytest
from apache_beam.internal import pickler
from apache_beam.io.gcp import bigquery_tools
from apache_beam.io.gcp.internal.clients import bigquery as bigquery_api
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.runner import PipelineResult
from apache_beam.testing.util import assert_that, equal_to
from pydantic import ValidationError

from airis_mon.arrowutil import record_schema, repeat_strings
from airis_mon.registry import COMPONENTS
from airis_mon.schema import (
    AGGREGATE_SCHEMA,
    METRIC_SCHEMA,
    Alert,
    DeadLetter,
    Event,
    HealthRecord,
    Metric,
    metrics_to_table,
)
from sinks.bigquery import BigQuerySinkConfig, WriteToBigQueryStorage
from sinks.bigquery.schema import TABLES
from sinks.bigquery.transform import BigQueryRows, record_rows, table_rows

DAY = 1_795_824_000_000  # 2026-11-28T00:00:00Z
MIDNIGHT = datetime(2026, 11, 28, tzinfo=timezone.utc)
RUN = "abc123"
#: The options "--project=p --temp_location=gs://b/t" fail Beam 2.77's option validation ("p" is no project id;
#: for the invalid bucket "b" Beam tries to create a default bucket over the network), hence these names.
DRY_RUN = [
    "--runner=DataflowRunner",
    "--dry_run=True",
    "--no_auth",
    "--project=airis-mon-ci",
    "--region=us-central1",
    "--temp_location=gs://airis-mon-ci/tmp",
    "--sdk_location=container",
]
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Refuse name lookups and IP connections beyond loopback; fail the test if any was tried."""
    attempts: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host not in _LOOPBACK:
            attempts.append(str(host))
            raise OSError(f"test guard: no network ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOOPBACK:
            attempts.append(str(address[0]))
            raise OSError(f"test guard: no network ({address[0]})")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], f"a test tried to reach {attempts}"


def test_the_network_guard_refuses_google(loopback_only):
    with pytest.raises(OSError, match="test guard: no network"):
        socket.create_connection(("bigquery.googleapis.com", 443), timeout=1)
    assert loopback_only == ["bigquery.googleapis.com"]
    loopback_only.clear()


def config(**extra) -> BigQuerySinkConfig:
    return BigQuerySinkConfig(name="warehouse", project="my-project", dataset="monitoring", **extra)


def alert(ts: int, ident: str, peak: float = 2.0) -> Alert:
    return Alert(
        ident, "p95 high", "high", "summary", "description", ts, "tfserving", "fraud", "prod", "threshold", 250.0,
        300.0, peak, 60.0, "firing", "trigger", ts - 60_000, 0, "p95_latency", "inference_latency",
        '{"model_name":"fraud"}', '{"team":"ml"}', False, '{"owner":"ana"}',
    )  # fmt: skip


def aggregates_table() -> pa.Table:
    row = [DAY + 60_000, DAY + 120_000, "s", "latency", "ms", '{"m":"a"}', 3, 6.0, 1.0, 3.0, 2.0, 2.0, 3.0, 3.0]
    return pa.Table.from_pylist([dict(zip(AGGREGATE_SCHEMA.names, row, strict=True))], schema=AGGREGATE_SCHEMA)


# --- schemas -----------------------------------------------------------------------------------------------


def test_one_table_per_kind_with_the_arrow_columns_then_event_time_and_run_key():
    expected_types = {pa.string(): "STRING", pa.int64(): "INTEGER", pa.float64(): "FLOAT", pa.bool_(): "BOOLEAN"}
    arrow = {
        "metrics": METRIC_SCHEMA,
        "aggregates": AGGREGATE_SCHEMA,
        "events": record_schema(Event),
        "alerts": record_schema(Alert),
        "dead_letters": record_schema(DeadLetter),
        "health": record_schema(HealthRecord),
    }
    assert list(TABLES) == list(arrow)
    for kind, arrow_schema in arrow.items():
        fields = TABLES[kind].table_schema()["fields"]
        assert len(fields) == len(arrow_schema) + 2, kind
        for field, column in zip(arrow_schema, fields, strict=False):
            assert (column["name"], column["type"], column["mode"]) == (
                field.name,
                expected_types[field.type],
                "NULLABLE",
            ), kind
        assert [(f["name"], f["type"]) for f in fields[-2:]] == [("event_time", "TIMESTAMP"), ("run_key", "STRING")]


def test_the_metrics_and_dead_letter_tables_exactly():
    assert [(f["name"], f["type"]) for f in TABLES["metrics"].table_schema()["fields"]] == [
        ("timestamp_ms", "INTEGER"),
        ("source", "STRING"),
        ("name", "STRING"),
        ("value", "FLOAT"),
        ("unit", "STRING"),
        ("tags", "STRING"),
        ("event_time", "TIMESTAMP"),
        ("run_key", "STRING"),
    ]
    assert [(f["name"], f["type"]) for f in TABLES["dead_letters"].table_schema()["fields"]] == [
        ("timestamp_ms", "INTEGER"),
        ("component", "STRING"),
        ("reason", "STRING"),
        ("original", "STRING"),
        ("event_time", "TIMESTAMP"),
        ("run_key", "STRING"),
    ]
    alert_types = {f["name"]: f["type"] for f in TABLES["alerts"].table_schema()["fields"]}
    assert (alert_types["silenced"], alert_types["threshold"], alert_types["context"]) == ("BOOLEAN", "FLOAT", "STRING")


def test_json_text_columns_stay_strings_and_say_so():
    described = {
        kind: sorted(f["name"] for f in table.table_schema()["fields"] if f.get("description") == "JSON as text")
        for kind, table in TABLES.items()
    }
    assert described == {
        "metrics": ["tags"],
        "aggregates": ["tags"],
        "events": ["data"],
        "alerts": ["context", "group", "labels"],
        "dead_letters": ["original"],
        "health": [],
    }


def test_day_partitioning_on_event_time_and_clustering_per_table():
    clustering = {kind: table.table_parameters()["clustering"]["fields"] for kind, table in TABLES.items()}
    assert clustering == {
        "metrics": ["name", "source"],
        "aggregates": ["name", "source"],
        "events": ["event_type", "source"],
        "alerts": ["rule", "model_id"],
        "dead_letters": ["component"],
        "health": ["integration"],
    }
    for table in TABLES.values():
        assert table.table_parameters()["timePartitioning"] == {"type": "DAY", "field": "event_time"}
    assert TABLES["alerts"].table_parameters(30)["timePartitioning"] == {
        "type": "DAY",
        "field": "event_time",
        "expirationMs": 30 * 86_400_000,
    }
    assert {kind: table.time_column for kind, table in TABLES.items()} == {
        "metrics": "timestamp_ms",
        "aggregates": "window_start_ms",
        "events": "timestamp_ms",
        "alerts": "timestamp_ms",
        "dead_letters": "timestamp_ms",
        "health": "timestamp_ms",
    }


def test_beam_and_the_bigquery_api_messages_accept_the_schema_and_parameters():
    for table in TABLES.values():
        parsed = bigquery_tools.parse_table_schema_from_json(json.dumps(table.table_schema()))
        assert [f.name for f in parsed.fields] == [f["name"] for f in table.table_schema()["fields"]]
        parameters = table.table_parameters(400)
        # The request messages Beam builds for table creation and for load jobs (no call is made).
        created = bigquery_api.Table(**parameters)
        load = bigquery_api.JobConfigurationLoad(**parameters)
        for message in (created, load):
            assert message.timePartitioning.field == "event_time"
            assert message.timePartitioning.expirationMs == 400 * 86_400_000
            assert list(message.clustering.fields) == list(table.clustering)


# --- rows --------------------------------------------------------------------------------------------------


def test_a_metrics_table_becomes_exact_rows_with_event_time_to_the_ms():
    table = metrics_to_table(
        [
            Metric(DAY + 5, "tfserving", "x", 1.5, "ms", '{"model_name":"fraud"}'),
            Metric(DAY + 86_400_123, "tfserving", "x", float("nan"), "ms", "{}"),
            Metric(DAY - 1, "tfserving", "x", float("-inf"), "ms", "{}"),
        ]
    )
    table = table.set_column(2, "name", repeat_strings(["latency", "errors"], [0, 1, 0]))  # dictionary-encoded
    assert list(table_rows(table, "metrics", RUN)) == [
        {
            "timestamp_ms": DAY + 5,
            "source": "tfserving",
            "name": "latency",
            "value": 1.5,
            "unit": "ms",
            "tags": '{"model_name":"fraud"}',
            "event_time": MIDNIGHT + timedelta(milliseconds=5),
            "run_key": RUN,
        },
        {
            "timestamp_ms": DAY + 86_400_123,
            "source": "tfserving",
            "name": "errors",
            "value": None,  # NaN is stored as NULL
            "unit": "ms",
            "tags": "{}",
            "event_time": datetime(2026, 11, 29, 0, 0, 0, 123_000, tzinfo=timezone.utc),
            "run_key": RUN,
        },
        {
            "timestamp_ms": DAY - 1,
            "source": "tfserving",
            "name": "latency",
            "value": None,
            "unit": "ms",
            "tags": "{}",
            "event_time": datetime(2026, 11, 27, 23, 59, 59, 999_000, tzinfo=timezone.utc),
            "run_key": RUN,
        },
    ]
    first = next(table_rows(table, "metrics", RUN))["event_time"]
    assert first.utcoffset() == timedelta(0)


def test_an_aggregates_table_becomes_rows_timed_by_the_window_start():
    assert list(table_rows(aggregates_table(), "aggregates", RUN)) == [
        {
            "window_start_ms": DAY + 60_000,
            "window_end_ms": DAY + 120_000,
            "source": "s",
            "name": "latency",
            "unit": "ms",
            "tags": '{"m":"a"}',
            "count": 3,
            "sum": 6.0,
            "min": 1.0,
            "max": 3.0,
            "mean": 2.0,
            "p50": 2.0,
            "p95": 3.0,
            "p99": 3.0,
            "event_time": datetime(2026, 11, 28, 0, 1, tzinfo=timezone.utc),
            "run_key": RUN,
        }
    ]


def test_an_alert_an_event_and_a_dead_letter_become_exact_rows():
    fired = alert(DAY + 1_234, "a1", peak=math.inf)
    assert list(record_rows([fired], "alerts", RUN)) == [
        {
            **fired._asdict(),
            "peak_value": None,  # +inf is stored as NULL
            "event_time": datetime(2026, 11, 28, 0, 0, 1, 234_000, tzinfo=timezone.utc),
            "run_key": RUN,
        }
    ]
    assert list(record_rows([Event(DAY + 7, "deploy", "github", "info", '{"sha":"f00"}')], "events", RUN)) == [
        {
            "timestamp_ms": DAY + 7,
            "event_type": "deploy",
            "source": "github",
            "severity": "info",
            "data": '{"sha":"f00"}',
            "event_time": MIDNIGHT + timedelta(milliseconds=7),
            "run_key": RUN,
        }
    ]
    assert list(record_rows([DeadLetter(0, "parse", "bad json", '"{x"')], "dead_letters", RUN)) == [
        {
            "timestamp_ms": 0,
            "component": "parse",
            "reason": "bad json",
            "original": '"{x"',
            "event_time": datetime(1970, 1, 1, tzinfo=timezone.utc),
            "run_key": RUN,
        }
    ]
    health = HealthRecord(DAY + 9, "mlflow", False, "timeout", math.inf, -1, 0)
    assert list(record_rows([health], "health", RUN)) == [
        {
            "timestamp_ms": DAY + 9,
            "integration": "mlflow",
            "ok": False,
            "message": "timeout",
            "latency_ms": None,  # non-finite -> NULL
            "freshness_ms": -1,
            "records": 0,
            "event_time": MIDNIGHT + timedelta(milliseconds=9),
            "run_key": RUN,
        }
    ]


class _Unclosable(io.BytesIO):
    def close(self):  # Beam's writers close their file; keep the bytes readable
        pass


def test_rows_encode_with_beams_avro_and_json_row_writers():
    rows = list(record_rows([alert(DAY + 5, "a1", peak=math.nan), alert(DAY + 9, "a2")], "alerts", RUN))
    avro = _Unclosable()
    writer = bigquery_tools.AvroRowWriter(avro, TABLES["alerts"].table_schema())  # FILE_LOADS temp files
    for row in rows:
        writer.write(row)
    writer.flush()
    avro.seek(0)
    assert list(fastavro.reader(avro)) == rows  # event_time as timestamp-micros, NULL peak kept
    lines = _Unclosable()
    writer = bigquery_tools.JsonRowWriter(lines)  # JSON load files refuse NaN: none is left
    for row in rows:
        writer.write(row)
    decoded = [json.loads(line) for line in lines.getvalue().decode().splitlines()]
    assert [(d["id"], d["peak_value"], d["event_time"]) for d in decoded] == [
        ("a1", None, "2026-11-28 00:00:00.005000+00:00"),
        ("a2", 2.0, "2026-11-28 00:00:00.009000+00:00"),
    ]


def test_the_row_transform_runs_in_a_pipeline():
    table = metrics_to_table([Metric(DAY + 1, "s", "a", 1.0, "ms", "{}"), Metric(DAY + 2, "s", "b", 2.0, "ms", "{}")])
    events = [Event(DAY + i, "deploy", "gh", "info", "{}") for i in range(3)]
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        metrics = pipeline | "M" >> beam.Create([("s000", table)]) | "MR" >> BigQueryRows("metrics", RUN)
        event_rows = pipeline | "E" >> beam.Create(events) | "ER" >> BigQueryRows("events", RUN)
        names = metrics | beam.Map(lambda row: (row["name"], row["event_time"], row["run_key"]))
        times = event_rows | beam.Map(lambda row: (row["timestamp_ms"] - DAY, row["event_time"]))
        assert_that(
            names,
            equal_to(
                [("a", MIDNIGHT + timedelta(milliseconds=1), RUN), ("b", MIDNIGHT + timedelta(milliseconds=2), RUN)]
            ),
            label="metrics",
        )
        assert_that(times, equal_to([(i, MIDNIGHT + timedelta(milliseconds=i)) for i in range(3)]), label="events")


# --- the write, translated by the Dataflow runner without submitting ----------------------------------------


def dry_run(sink: BigQuerySinkConfig, *options: str) -> tuple[dict, dict[str, dict], PipelineResult]:
    """Translate a pipeline writing every kind; (transform's outputs, WriteToBigQuery configs by step, result)."""
    pipeline = beam.Pipeline(options=PipelineOptions([*DRY_RUN, *options]))
    points = metrics_to_table([Metric(DAY, "s", "a", 1.0, "ms", "{}")])
    inputs = {
        "metrics": pipeline | "M" >> beam.Create([("s000", points)]),
        "aggregates": pipeline | "G" >> beam.Create([("s000", aggregates_table())]),
        "events": pipeline | "E" >> beam.Create([Event(DAY, "deploy", "gh", "info", "{}")]),
        "alerts": pipeline | "A" >> beam.Create([alert(DAY, "a1")]),
        "dead_letters": pipeline | "D" >> beam.Create([DeadLetter(DAY, "parse", "bad", "{}")]),
        "health": pipeline | "HR" >> beam.Create([HealthRecord(DAY, "mlflow", False, "timeout", 12.5, -1, 0)]),
        "health_report": pipeline | "H" >> beam.Create([{"overall_status": "healthy"}]),
    }
    written = inputs | WriteToBigQueryStorage(sink, RUN)
    result = pipeline.run()
    assert result.state == "DONE"  # dry_run returns before submitting
    writes = {
        transform.unique_name: pickler.loads(transform.spec.payload)
        for transform in result.job.proto_pipeline.components.transforms.values()
        if transform.spec.urn == "beam:transform:write_to_big_query:v0"
    }
    return written, writes, result


LABELS = {
    "metrics": "Metrics",
    "aggregates": "Aggregates",
    "events": "Events",
    "alerts": "Alerts",
    "dead_letters": "DeadLetters",
    "health": "Health",
}


def test_a_batch_job_translates_with_one_file_loads_write_per_table():
    written, writes, result = dry_run(config())
    assert sorted(written) == sorted(LABELS)  # the health report has no table
    assert sorted(writes) == sorted(f"WriteToBigQueryStorage/Write{label}ToBigQuery" for label in LABELS.values())
    for kind, label in LABELS.items():
        write = writes[f"WriteToBigQueryStorage/Write{label}ToBigQuery"]
        assert write["table"] == f"my-project:monitoring.airis_mon_{kind}"
        assert write["schema"] == TABLES[kind].table_schema()
        assert write["additional_bq_parameters"] == {
            "timePartitioning": {"type": "DAY", "field": "event_time"},
            "clustering": {"fields": list(TABLES[kind].clustering)},
        }
        assert (write["method"], write["temp_file_format"]) == ("FILE_LOADS", "AVRO")
        assert write["triggering_frequency"] is None  # batch: one load per table at the end
        assert (write["create_disposition"], write["write_disposition"]) == ("CREATE_IF_NEEDED", "WRITE_APPEND")
    names = {t.unique_name for t in result.job.proto_pipeline.components.transforms.values()}
    assert "WriteToBigQueryStorage/WriteAlertsToBigQuery/BigQueryBatchFileLoads" in names
    assert "WriteToBigQueryStorage/AlertsToRows/ToRows" in names
    assert result.job.proto.type.name == "JOB_TYPE_BATCH"


def test_a_streaming_job_loads_files_every_triggering_period():
    sink = config(triggering_frequency_s=600, partition_expiration_days=90, table_prefix="mon_",
                  kms_key="projects/k/locations/eu/keyRings/r/cryptoKeys/c")  # fmt: skip
    _, writes, result = dry_run(sink, "--streaming")
    assert result.job.proto.type.name == "JOB_TYPE_STREAMING"
    write = writes["WriteToBigQueryStorage/WriteEventsToBigQuery"]
    assert (write["table"], write["method"], write["triggering_frequency"]) == (
        "my-project:monitoring.mon_events",
        "FILE_LOADS",
        600,
    )
    assert write["kms_key"] == "projects/k/locations/eu/keyRings/r/cryptoKeys/c"
    assert write["additional_bq_parameters"]["timePartitioning"]["expirationMs"] == 90 * 86_400_000


def test_streaming_inserts_translate_too():
    _, writes, _ = dry_run(config(write_method="STREAMING_INSERTS", create_disposition="CREATE_NEVER"), "--streaming")
    assert {w["method"] for w in writes.values()} == {"STREAMING_INSERTS"}
    assert {w["create_disposition"] for w in writes.values()} == {"CREATE_NEVER"}
    assert {w["triggering_frequency"] for w in writes.values()} == {None}


# --- config ------------------------------------------------------------------------------------------------


def test_config_defaults():
    sink = config()
    assert (sink.table_prefix, sink.write_method, sink.create_disposition) == (
        "airis_mon_",
        "FILE_LOADS",
        "CREATE_IF_NEEDED",
    )
    assert (sink.triggering_frequency_s, sink.partition_expiration_days, sink.kms_key) == (300, None, None)
    assert sink.table_name("dead_letters") == "my-project:monitoring.airis_mon_dead_letters"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("project", "My Project", "String should match pattern"),
        ("dataset", "my-dataset", "String should match pattern"),
        ("table_prefix", "a.b", "String should match pattern"),
        ("write_method", "STORAGE_WRITE_API", "Input should be 'FILE_LOADS' or 'STREAMING_INSERTS'"),
        ("triggering_frequency_s", 10, "greater than or equal to 60"),
        ("create_disposition", "CREATE_ALWAYS", "Input should be 'CREATE_IF_NEEDED' or 'CREATE_NEVER'"),
        ("kms_key", "my-key", "String should match pattern"),
        ("password", "x", "Extra inputs are not permitted"),
    ],
)
def test_bad_config_values_are_refused_by_field(field, value, message):
    settings = {"name": "warehouse", "project": "my-project", "dataset": "monitoring", field: value}
    with pytest.raises(ValidationError) as caught:
        BigQuerySinkConfig.model_validate(settings)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    assert message in errors[0]["msg"]


def test_a_bad_run_key_is_refused():
    for run_key in ("", "../x", "a b"):
        with pytest.raises(ValueError, match="run_key must be a non-empty alphanumeric string"):
            WriteToBigQueryStorage(config(), run_key)


@pytest.mark.skipif(
    not any(c.kind == "sink" and c.type_name == "bigquery" for c in COMPONENTS),
    reason="runs once airis_mon.registry lists the bigquery sink",
)
def test_a_config_file_with_a_bigquery_sink_loads(tmp_path):
    from airis_mon.config import load_config

    path = tmp_path / "airis.yaml"
    path.write_text("sinks:\n  - {name: warehouse, type: bigquery, project: my-project, dataset: monitoring}\n")
    (sink,) = load_config(path).sinks
    assert isinstance(sink, BigQuerySinkConfig)
    assert sink.table_name("alerts") == "my-project:monitoring.airis_mon_alerts"
