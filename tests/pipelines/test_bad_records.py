"""One bad record never blocks (issue 13): the main job, run as a user runs it, over payload files and a
gateway spool written directly (bypassing the gateway's checks). Every record the pipeline cannot process
becomes a dead letter with its reason and original; the good records after it, in the same file, are
processed and stored; the run exits normally and the spool segment moves to ``done/``."""

from __future__ import annotations

import json
import time

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import DAY_MS
from tests.pipelines.test_main import main

DEEP = 5_000  # beyond what json.loads can decode (RecursionError)


def _event(timestamp: str, data: str = "{}", source: str = '"ci"') -> str:
    return (
        f'{{"timestamp": {timestamp}, "event_type": "deploy", "source": {source}, "severity": "info", "data": {data}}}'
    )


def _metrics(timestamp: str, point: str = '{"name": "bad", "value": 1}') -> str:
    return f'{{"timestamp": {timestamp}, "source": "tf", "metrics": [{point}]}}'


def bad_lines(now_ms: int) -> dict[str, tuple[str, str]]:
    """case -> (the line as written, the start of its dead letter's reason)."""
    day = str(DAY_MS)
    return {
        "metrics 1e30": (_metrics("1e30"), "timestamp: Value error, more than 86400 s ahead"),
        "metrics 10**25": (_metrics(str(10**25)), "timestamp: Value error, more than 86400 s ahead"),
        "metrics false": (_metrics("false"), "timestamp: Value error, not a timestamp: a boolean"),
        "event true": (_event("true"), "timestamp: Value error, not a timestamp: a boolean"),
        "event +1e266": (_event("1e266"), "timestamp: Value error, more than 86400 s ahead"),
        "event -1e266": (_event("-1e266"), "timestamp: Value error, before 1970-01-01T00:00:00.000Z"),
        "before the range": (_metrics('"1969-07-20T20:17:00Z"'), "timestamp: Value error, before 1970-01-01"),
        "far future ISO": (_event('"2999-01-01T00:00:00Z"'), "timestamp: Value error, more than 86400 s ahead"),
        "two days ahead": (_metrics(str(now_ms + 2 * 86_400_000)), "timestamp: Value error, more than 86400 s ahead"),
        "1e400 in event data": (_event(day, '{"latency": 1e400}'), "data.latency: must be a finite number"),
        "NaN in event data": (_event(day, '{"a": [1, NaN]}'), "data.a[1]: must be a finite number"),
        "-Infinity in event data": (_event(day, '{"b": -Infinity}'), "data.b: must be a finite number"),
        "Infinity in a tag": (
            _metrics(day, '{"name": "bad", "value": 1, "tags": {"k": Infinity}}'),
            "metrics[0].tags.k: must be a finite number",
        ),
        "NaN metric value": (
            _metrics(day, '{"name": "bad", "value": NaN, "unit": "ms", "tags": {}}'),  # Normalize's, in full form
            "value: NaN is not a metric value",
        ),
        "lone surrogate": (_event(day, source='"ci\\ud800"'), "source: Input should be a valid string"),
        "nested 100 deep": (_event(day, f'{{"a": {"[" * 100 + "]" * 100}}}'), "data.a[0]"),
        "nested 5000 deep": (_event(day, f'{{"a": {"[" * DEEP + "]" * DEEP}}}'), "line is not JSON (nested too deeply"),
    }


def good_lines(label: str) -> list[str]:
    """A good metric point and a good event, written after every bad line."""
    return [
        json.dumps({"timestamp": DAY_MS, "source": "tf", "metrics": [{"name": f"good_{label}", "value": 7.0}]}),
        json.dumps({"timestamp": DAY_MS, "event_type": f"good_{label}", "source": "ci", "severity": "info"}),
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """One run of the main job over a payload file and a spool segment, each bad lines then good ones."""
    root = tmp_path_factory.mktemp("bad_records")
    cases = bad_lines(int(time.time() * 1000))
    lines = [line for line, _ in cases.values()]
    (root / "data").mkdir()
    (root / "data" / "day.jsonl").write_text("\n".join([*lines, *good_lines("file")]) + "\n")
    (root / "spool").mkdir()
    segment = root / "spool" / "segment-000001.jsonl"
    segment.write_text("\n".join([*lines, *good_lines("spool")]) + "\n")
    (root / "config.yaml").write_text(
        """
integrations:
  - {name: recorded, type: payload_files, paths: ["data/*.jsonl"]}
  - {name: api, type: gateway, spool: spool}
aggregation: {window_seconds: 60}
sinks:
  - {name: storage, type: parquet, path: out}
""",
        encoding="utf-8",
    )
    result = main("--config", str(root / "config.yaml"))  # asserts exit status 0
    out = root / "out"
    dead = [json.loads(line) for path in sorted(out.glob("dead_letters/*/*.jsonl")) for line in path.open()]
    return {"root": root, "out": out, "cases": cases, "dead": dead, "stdout": result.stdout, "segment": segment}


@pytest.mark.slow
@pytest.mark.parametrize("component", ["payload_files:recorded", "gateway:api"])
def test_every_bad_record_is_a_dead_letter_with_its_reason_and_original(run, component):
    dead = [d for d in run["dead"] if d["component"] in (component, "normalize")]
    for case, (line, reason) in run["cases"].items():
        matching = [d for d in dead if d["reason"].startswith(reason)]
        assert matching, f"{case}: no dead letter starting {reason!r} in {[d['reason'] for d in dead]}"
        if reason.startswith("line is not JSON"):
            assert any(json.loads(d["original"]) == line for d in matching), case  # the line, verbatim
        else:
            expected = json.loads(line)
            originals = [json.loads(d["original"]) for d in matching]
            assert any(_same(original, expected) for original in originals), case
    own = [d for d in run["dead"] if d["component"] == component]
    assert len(own) == len(run["cases"]) - 1  # the NaN value is Normalize's


def _same(left, right) -> bool:
    """JSON equality where NaN equals NaN."""
    return json.dumps(left, sort_keys=True, allow_nan=True) == json.dumps(right, sort_keys=True, allow_nan=True)


@pytest.mark.slow
def test_the_good_records_after_the_bad_ones_are_processed_and_stored(run):
    metrics = pq.read_table(run["out"] / "metrics" / "date=2026-11-28")
    names = set(metrics.filter(pc.not_equal(metrics.column("source"), "airis_mon")).column("name").to_pylist())
    assert names == {"good_file", "good_spool"}
    events = pq.read_table(run["out"] / "events" / "date=2026-11-28")
    assert sorted(events.column("event_type").to_pylist()) == ["good_file", "good_spool"]
    assert "normalized                 2 metric points" in run["stdout"]
    stored_days = {path.name for path in (run["out"] / "events").iterdir()}
    assert stored_days == {"date=2026-11-28"}  # no bad time reached storage


@pytest.mark.slow
def test_the_spool_segment_with_bad_records_is_marked_processed(run):
    assert not run["segment"].exists()
    assert (run["root"] / "spool" / "done" / run["segment"].name).exists()


@pytest.mark.slow
def test_dead_letters_are_stored_by_their_own_time_or_as_unknown(run):
    days = {path.name for path in (run["out"] / "dead_letters").iterdir()}
    assert days == {"date=2026-11-28", "date=unknown"}  # out-of-range times are not dates
    by_reason = {d["reason"]: d["timestamp_ms"] for d in run["dead"]}
    assert all(ms in (0, DAY_MS) for ms in by_reason.values())
