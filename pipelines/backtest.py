"""Backtest: which alerts would the configured rules have raised on stored history?

    python -m pipelines.backtest --config airis-mon.yaml --history ./airis-mon-output \\
        [--start 2026-11-28T00:00:00Z --end 2026-11-29T00:00:00Z] [--output ./airis-mon-backtest]

Reads the window aggregates that ``pipelines.main`` stored under
``HISTORY/aggregates/date=*/`` (only the date partitions the range touches;
drift rules also read ``HISTORY/distributions/date=*/``),
runs every rule through the same engine as live runs (the batch runner:
GroupByKey + ordered evaluation), applies the silences, writes the alerts to
``OUTPUT/backtest-alerts.jsonl`` and prints a table per rule: episodes, first
and last trigger, total firing time and the episodes still firing at the end.
An episode still firing at the end counts as firing up to ``--end``, or
without ``--end`` up to the end of the stored history read (the newest
window end), not just to its last notification. Without ``--config`` the bundled sample
config is used; without ``--history``, ``./airis-mon-output``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airis_mon.config import Config, load_config
from airis_mon.errors import ConfigError
from airis_mon.extras import one_line_on_missing_extra
from airis_mon.logs import report_failure
from airis_mon.timeutil import ms_to_iso, to_epoch_ms
from pipelines.options import beam_options
from sinks.notification_log import NotificationLogConfig, WriteToNotificationLog
from transforms.rules.batch import EvaluateRules
from transforms.rules.notify import ApplySilences
from transforms.rules.scored import distribution_metrics

__all__ = ["ReadAggregates", "aggregate_files", "episode_table", "history_end_ms", "run", "stored_window_seconds"]

_DAY_MS = 86_400_000


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m pipelines.backtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="YAML config with the rules. Default: the bundled sample config")
    parser.add_argument(
        "--history", default="./airis-mon-output", help="output folder of pipelines.main. Default: ./airis-mon-output"
    )
    parser.add_argument("--start", default=None, help="ISO-8601 start of the range (inclusive). Default: all history")
    parser.add_argument("--end", default=None, help="ISO-8601 end of the range (exclusive). Default: all history")
    parser.add_argument(
        "--output",
        default="./airis-mon-backtest",
        help="folder for backtest-alerts.jsonl. Default: ./airis-mon-backtest",
    )
    from airis_mon.logs import add_logging_arguments  # consumed here, so Beam never sees them

    add_logging_arguments(parser, "WARNING")
    return parser.parse_known_args(argv)


def aggregate_files(history: Path, start_ms: int | None, end_ms: int | None, kind: str = "aggregates") -> list[str]:
    """The stored aggregate files (or files of another table ``kind``: ``distributions``) whose date partition
    overlaps [start, end)."""
    files = []
    for folder in sorted((history / kind).glob("date=*")):
        day = folder.name.removeprefix("date=")
        try:
            day_ms = to_epoch_ms(f"{day}T00:00:00Z")
        except ValueError:
            continue
        if (start_ms is not None and day_ms + _DAY_MS <= start_ms) or (end_ms is not None and day_ms >= end_ms):
            continue
        files.extend(str(path) for path in sorted(folder.glob("*.parquet")))
    return files


def stored_window_seconds(files: Sequence[str]) -> int:
    """The window length of the stored aggregates, s (read from the first row)."""
    first = pq.ParquetFile(files[0]).read_row_group(0, columns=["window_start_ms", "window_end_ms"]).slice(0, 1)
    return (first.column("window_end_ms")[0].as_py() - first.column("window_start_ms")[0].as_py()) // 1000


def history_end_ms(files: Sequence[str], start_ms: int | None, end_ms: int | None) -> int:
    """The end of the history a backtest reads (epoch ms): ``end_ms`` when given, otherwise the newest
    ``window_end_ms`` among the stored rows inside the range (0 when there is none)."""
    if end_ms is not None:
        return end_ms
    newest = 0
    for path in files:
        ends = pq.read_table(path, columns=["window_start_ms", "window_end_ms"])
        if start_ms is not None:
            ends = ends.filter(pc.greater_equal(ends.column("window_start_ms"), start_ms))
        if ends.num_rows:
            newest = max(newest, pc.max(ends.column("window_end_ms")).as_py())
    return newest


class ReadAggregates(beam.DoFn):
    """An aggregate file -> its rows inside [start, end), as one table."""

    def __init__(self, start_ms: int | None, end_ms: int | None):
        self._start_ms = start_ms
        self._end_ms = end_ms

    def process(self, path: str):
        table = pq.read_table(path)
        starts = table.column("window_start_ms")
        mask = pa.array([True] * table.num_rows)
        if self._start_ms is not None:
            mask = pc.and_(mask, pc.greater_equal(starts, self._start_ms))
        if self._end_ms is not None:
            mask = pc.and_(mask, pc.less_equal(table.column("window_end_ms"), self._end_ms))
        selected = table.filter(mask)
        if selected.num_rows:
            yield selected


def episode_table(alerts: Iterable[dict], end_ms: int) -> list[dict]:
    """Per rule: episodes, first and last trigger, total firing time (s), episodes still open.

    An episode still firing at the end of the range counts until ``end_ms`` (epoch ms).
    """
    episodes: dict[str, dict[str, dict]] = {}
    for alert in alerts:
        episode = episodes.setdefault(alert["rule"], {}).setdefault(alert["id"], {"resolved": None})
        if alert["notification"] == "trigger":
            episode["trigger"] = alert["timestamp_ms"]
            episode["starts"] = alert["starts_at_ms"]
        elif alert["notification"] == "resolve":
            episode["resolved"] = alert["resolved_at_ms"]
    rows = []
    for rule, by_id in sorted(episodes.items()):
        triggered = [e for e in by_id.values() if "trigger" in e]
        rows.append(
            {
                "rule": rule,
                "episodes": len(triggered),
                "first_trigger": min(e["trigger"] for e in triggered) if triggered else None,
                "last_trigger": max(e["trigger"] for e in triggered) if triggered else None,
                "firing_s": sum(((e["resolved"] or end_ms) - e["trigger"]) / 1000 for e in triggered),
                "open": sum(1 for e in triggered if e["resolved"] is None),
            }
        )
    return rows


def _format(rows: list[dict], config: Config) -> str:
    def when(ms):
        return ms_to_iso(ms)[:16].replace("T", " ") if ms else "-"

    lines = [f"{'rule':<32} {'episodes':>8}  {'first trigger':<16}  {'last trigger':<16}  {'firing':>10}  {'open':>4}"]
    seen = {row["rule"]: row for row in rows}
    for rule in config.rules:
        row = seen.get(
            rule.name, {"episodes": 0, "first_trigger": None, "last_trigger": None, "firing_s": 0, "open": 0}
        )
        lines.append(
            f"{rule.name:<32} {row['episodes']:>8}  {when(row['first_trigger']):<16}  {when(row['last_trigger']):<16}"
            f"  {row['firing_s'] / 60:>8.1f} m  {row['open']:>4}"
        )
    return "\n".join(lines)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args, beam_args = parse_args(argv)
    try:
        config = load_config(args.config)
        start_ms = to_epoch_ms(args.start) if args.start else None
        end_ms = to_epoch_ms(args.end) if args.end else None
    except ConfigError as error:
        report_failure(error)
        return 2
    except ValueError as error:
        report_failure(f"--start/--end: {error}")
        return 2
    files = aggregate_files(Path(args.history), start_ms, end_ms)
    if not files:
        report_failure(f"no stored aggregates under {Path(args.history) / 'aggregates'} for that range")
        return 2
    window_s = stored_window_seconds(files)
    try:
        for rule in config.rules:
            rule.window_ms(window_s)
    except ValueError as error:
        report_failure(f"rules do not fit the stored {window_s} s windows: {error}")
        return 2
    if distribution_metrics(config.rules):  # drift rules read the stored distributions too
        files += aggregate_files(Path(args.history), start_ms, end_ms, "distributions")
    output = Path(args.output).resolve()
    alerts_path = output / "backtest-alerts.jsonl"
    with beam.Pipeline(options=beam_options(beam_args)) as pipeline:
        _ = (
            pipeline
            | "AggregateFiles" >> beam.Create(files)
            | "ReadAggregates" >> beam.ParDo(ReadAggregates(start_ms, end_ms))
            | "EvaluateRules" >> EvaluateRules(config.rules, window_s, until_ms=end_ms)
            | "ApplySilences" >> ApplySilences(config.silences)
            | "WriteAlerts"
            >> WriteToNotificationLog(NotificationLogConfig(name="backtest", path=str(alerts_path)), replace=True)
        )
    alerts = [json.loads(line) for line in alerts_path.read_text().splitlines()]
    rows = episode_table(alerts, history_end_ms(files, start_ms, end_ms))
    span = f"{args.start or 'start of history'} .. {args.end or 'end of history'}"
    print(f"AIRIS-MON backtest over {len(files)} aggregate file(s), {span}, {window_s} s windows")
    print(_format(rows, config))
    print(f"alerts: {alerts_path}")
    return 0


if __name__ == "__main__":
    from airis_mon.logs import setup_logging_from_argv

    setup_logging_from_argv("backtest", "WARNING")
    with one_line_on_missing_extra("python -m pipelines.backtest"):
        sys.exit(run())
