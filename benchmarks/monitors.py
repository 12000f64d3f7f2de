"""The ML monitors measured on a labelled history: precision, recall and detection delay per monitor type,
and the same alerts from the batch, live and backtest runners.

    python -m benchmarks.monitors [--days 28] [--seed 7] [--cycle 10] [--smoke] [--config examples/monitors.yaml]

Generates the history of :mod:`benchmarks.monitors_history` (one-minute points of three models and three
endpoints with known drifts, seasonal anomalies, burn episodes and version regressions), aggregates it as
the main job does (:func:`transforms.aggregate.aggregate_with_distributions`: the window statistics, and
a DDSketch per window of the metrics drift rules read), and evaluates the rules of ``--config`` three ways:

- **batch**: :func:`transforms.rules.batch.evaluate_group` per (rule, group) over all its windows, the
  batch runner's step (``EvaluateRules`` without the Beam shuffle);
- **live**: the same windows fed in cycles of 1 to ``2 * --cycle - 1`` base windows (seeded) through
  :func:`transforms.rules.incremental.advance`, the state of every group written as JSON between cycles
  (:meth:`transforms.rules.checkpointed.RuleEntry.to_json`, ``json.dumps``/``json.loads``, ``from_json``)
  and kept only when the live runner keeps it, as the live runner does cycle by cycle;
- **backtest**: the aggregates and distributions written in the stored layout
  (``aggregates/date=*/``, ``distributions/date=*/``) to a temporary folder and ``pipelines.backtest``
  run on it (``EvaluateRules`` in a local Beam pipeline), its ``backtest-alerts.jsonl`` read back.

The three must give the same alerts (id, notification, timestamp, start, resolve time). Scoring (the labels'
semantics are in :mod:`benchmarks.monitors_history`): an incident is detected when an episode of a rule of
its type and group triggers in ``[start, end + grace]``; delay = trigger - start; precision = episodes
that match an incident / episodes; recall = detected incidents / incidents. Exit 1 when the paths disagree
or (not with ``--smoke``) a monitor type with incidents has precision or recall below 0.9.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airis_mon.extras import COMMAND_EXTRAS, exit_if_missing, one_line_on_missing_extra

if __name__ == "__main__":
    exit_if_missing("python -m benchmarks.monitors", *COMMAND_EXTRAS.get("benchmarks.monitors", ()))

from airis_mon.config import Config, load_config
from airis_mon.timeutil import ms_to_iso
from benchmarks.measure import log
from benchmarks.monitors_history import GRACE_MS, MINUTE_MS, MONITORS, History, Incident, generate
from transforms.aggregate import Distributions, aggregate_with_distributions
from transforms.rules.batch import evaluate_group
from transforms.rules.checkpointed import RuleEntry
from transforms.rules.config import NoDataRule, RuleConfig
from transforms.rules.incremental import advance
from transforms.rules.scored import distribution_metrics, is_distribution_table, rows_for
from transforms.rules.select import select_partials
from transforms.rules.vectorized import select_columns

__all__ = ["TARGET", "alert_key", "cycle_horizons", "evaluate_backtest", "evaluate_batch", "evaluate_live", "main",
           "score", "stored_layout"]  # fmt: skip

TARGET = 0.9  # precision and recall, each monitor type
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "monitors.yaml"
SMOKE_DAYS = 12
_DAY_MS = 86_400_000


def aggregate(history: History, config: Config) -> tuple[pa.Table, pa.Table]:
    """The window aggregates and distributions of the history, as the main job computes them."""
    metrics = distribution_metrics(config.rules) | frozenset(config.aggregation.distributions)
    wanted = Distributions(metrics, config.aggregation.relative_accuracy) if metrics else None
    return aggregate_with_distributions(history.points, config.aggregation.window_seconds * 1000, wanted)


def _tables(aggregates: pa.Table, distributions: pa.Table) -> list[pa.Table]:
    return [t for t in (aggregates, distributions) if t.num_rows]


def evaluate_batch(rules: Sequence[RuleConfig], tables: Sequence[pa.Table], window_s: int, until_ms: int) -> list:
    """The batch runner's selection (``_SelectColumns``) and :func:`evaluate_group` per (rule, group)."""
    by_name = {rule.name: rule for rule in rules}
    listed = [rule for rule in rules if rows_for(rule)]
    columnar = [rule for rule in rules if not rows_for(rule)]
    parts: dict[tuple, list] = defaultdict(list)
    for table in tables:
        for key, part in select_partials(table, listed):
            parts[key].append(part)
        if not is_distribution_table(table):
            for key, part in select_columns(table, columnar):
                parts[key].append(part)
    alerts = []
    for key in sorted(parts):
        alerts += evaluate_group(by_name[key[0]], key, parts[key], window_s, until_ms)
    return alerts


def _kept(rule: RuleConfig, step) -> bool:
    """Whether the live runner keeps a group's entry after a step (``checkpointed._AdvanceGroup``)."""
    state = step.state
    return bool(step.waiting or state.phase != "inactive" or isinstance(rule, NoDataRule) or state.recent
                or state.history)  # fmt: skip


def cycle_horizons(start_ms: int, until_ms: int, window_ms: int, mean_windows: int, seed: int) -> list[int]:
    """The live path's cycle horizons (epoch ms): cycles of 1 to ``2 * mean_windows - 1`` base windows
    (seeded, uniform; all ``mean_windows`` when it is 1), the last one at ``until_ms``. Cycles of varying
    length cut the rule windows at varying points, as a live runner's cycles do."""
    rng = np.random.default_rng(seed)
    horizons, horizon = [], start_ms
    while horizon < until_ms:
        horizon = min(horizon + int(rng.integers(1, 2 * mean_windows)) * window_ms, until_ms)
        horizons.append(horizon)
    return horizons


def evaluate_live(rules: Sequence[RuleConfig], tables: Sequence[pa.Table], window_s: int,
                  horizons: Sequence[int]) -> tuple[list, int]:  # fmt: skip
    """Cycles up to each of ``horizons`` (ascending epoch ms) through :func:`advance`; every kept entry goes
    through JSON between cycles. Returns the alerts and the number of entry round trips."""
    by_name = {rule.name: rule for rule in rules}
    arrivals: dict[tuple, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    bounds = np.asarray(horizons, dtype=np.int64)
    for table in tables:
        for key, parts in select_partials(table, rules):
            ends = np.fromiter((part.window_end_ms for part in parts), dtype=np.int64, count=len(parts))
            for part, cycle in zip(parts, np.searchsorted(bounds, ends, side="left").tolist(), strict=True):
                arrivals[key][cycle].append(part)  # the first cycle whose horizon closes its window
    entries: dict[tuple, str] = {}  # key -> the entry as stored (JSON text)
    alerts, round_trips = [], 0
    for cycle, horizon in enumerate(horizons):
        for key in sorted(set(entries) | {k for k, by_cycle in arrivals.items() if cycle in by_cycle}):
            rule = by_name[key[0]]
            stored = entries.pop(key, None)
            entry = RuleEntry.from_json(json.loads(stored)) if stored is not None else None
            step = advance(rule, key, entry.state if entry else None, entry.waiting if entry else (),
                           arrivals[key].pop(cycle, []), horizon, rule.window_ms(window_s))  # fmt: skip
            if step.late:
                raise AssertionError(f"late windows in the live path for {key}: {step.late[:3]}")
            alerts += step.alerts
            if _kept(rule, step):
                entries[key] = json.dumps(RuleEntry(key, step.state, tuple(step.waiting)).to_json(), allow_nan=False)
                round_trips += 1
    return alerts, round_trips


def stored_layout(folder: Path, aggregates: pa.Table, distributions: pa.Table) -> None:
    """Write the tables as the parquet sink stores them: ``KIND/date=YYYY-MM-DD/part-*.parquet``."""
    for kind, table in (("aggregates", aggregates), ("distributions", distributions)):
        if not table.num_rows:
            continue
        days = pc.divide(table.column("window_start_ms"), _DAY_MS).to_numpy()
        for day in sorted(set(days.tolist())):
            part = table.filter(pa.array(days == day))
            path = folder / kind / f"date={ms_to_iso(day * _DAY_MS)[:10]}" / "part-benchmark-s000.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, path)


def evaluate_backtest(config_path: Path, folder: Path, end_ms: int) -> list[dict]:
    """``python -m pipelines.backtest`` on the stored layout under ``folder``; its alerts as dicts."""
    from pipelines.backtest import run

    output = folder / "backtest"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = run(["--config", str(config_path), "--history", str(folder), "--end", ms_to_iso(end_ms),
                    "--output", str(output)])  # fmt: skip
    if code != 0:
        raise RuntimeError(f"pipelines.backtest exited {code}: {printed.getvalue()}")
    return [json.loads(line) for line in (output / "backtest-alerts.jsonl").read_text().splitlines()]


def alert_key(alert) -> tuple:
    """What must agree between the paths: id, rule, group, notification and its times."""
    get = alert.get if isinstance(alert, dict) else alert._asdict().get
    return (get("id"), get("rule"), get("group"), get("notification"), get("timestamp_ms"), get("starts_at_ms"),
            get("resolved_at_ms"))  # fmt: skip


def score(alerts: Sequence, rules: Sequence[RuleConfig], incidents: Sequence[Incident],
          decoys: Sequence[Incident] = ()) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """Per monitor type (and per incident kind): incidents, episodes, TP, FP, FN, precision, recall,
    delays (minutes). The monitor type of a rule is its ``type``."""
    type_of = {rule.name: getattr(rule, "type", "threshold") for rule in rules}
    triggers = sorted({(a[1], a[2], a[4], a[0]) for a in map(alert_key, alerts) if a[3] == "trigger"})
    episodes: dict[str, list[tuple[str, int]]] = defaultdict(list)  # monitor -> [(group, trigger ms)]
    for rule, group, timestamp, _ in triggers:
        episodes[type_of[rule]].append((group, timestamp))
    monitors = [m for m in MONITORS if m in episodes or any(i.monitor == m for i in incidents)]
    monitors += sorted(set(episodes) - set(monitors))
    rows, kinds = [], []

    def matches(incident: Incident, group: str, timestamp: int) -> bool:
        grace = GRACE_MS.get(incident.monitor, 0)
        return group == incident.group and incident.start_ms <= timestamp <= incident.end_ms + grace

    for monitor in monitors:
        mine = [i for i in incidents if i.monitor == monitor]
        found = episodes.get(monitor, [])
        delays = {}
        for incident in mine:
            hits = [t for g, t in found if matches(incident, g, t)]
            if hits:
                delays[incident] = (min(hits) - incident.start_ms) / MINUTE_MS
        true_positive = sum(1 for g, t in found if any(matches(i, g, t) for i in mine))
        decoy_hits = sum(1 for d in decoys if d.monitor == monitor and any(
            g == d.group and d.start_ms <= t <= d.end_ms + GRACE_MS.get(monitor, 0) for g, t in found))  # fmt: skip
        rows.append(_row(monitor, len(mine), len(found), true_positive, list(delays.values()),
                         sum(1 for d in decoys if d.monitor == monitor), decoy_hits))  # fmt: skip
        for kind in sorted({i.kind for i in mine}):
            of_kind = [i for i in mine if i.kind == kind]
            kind_delays = [delays[i] for i in of_kind if i in delays]
            kinds.append({"monitor": monitor, "kind": kind, "incidents": len(of_kind), "detected": len(kind_delays),
                          "median_delay_min": statistics.median(kind_delays) if kind_delays else None,
                          "max_delay_min": max(kind_delays) if kind_delays else None})  # fmt: skip
    return rows, kinds


def _row(monitor: str, incidents: int, episodes: int, tp: int, delays: list, decoys: int, decoy_hits: int) -> dict:
    return {
        "monitor": monitor,
        "incidents": incidents,
        "episodes": episodes,
        "tp": tp,
        "fp": episodes - tp,
        "fn": incidents - len(delays),
        "precision": tp / episodes if episodes else None,
        "recall": len(delays) / incidents if incidents else None,
        "median_delay_min": statistics.median(delays) if delays else None,
        "max_delay_min": max(delays) if delays else None,
        "decoys": decoys,
        "decoys_alerted": decoy_hits,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.monitors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=None, help=f"days of history. Default: 28 ({SMOKE_DAYS} --smoke)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed. Default: 7")
    parser.add_argument("--cycle", type=int, default=10, help="live path: mean base windows per cycle. Default: 10")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="rules config. Default: examples/monitors.yaml"
    )
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_DAYS} days; only the paths' agreement decides")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--keep-data", action="store_true", help="keep the stored layout and the backtest output")
    args = parser.parse_args(argv)
    if args.days is None:
        args.days = SMOKE_DAYS if args.smoke else 28
    if args.cycle < 1:
        parser.error("--cycle: at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config(str(args.config))
    window_s = config.aggregation.window_seconds
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    history = generate(args.days, args.seed)
    seconds["generate"] = time.perf_counter() - started
    log(f"history: {args.days} days from {ms_to_iso(history.start_ms)}, {history.points.num_rows:,} points, "
        f"{len(history.series)} series, {len(history.incidents)} incidents, {len(history.decoys)} decoys")  # fmt: skip

    started = time.perf_counter()
    aggregates, distributions = aggregate(history, config)
    seconds["aggregate"] = time.perf_counter() - started
    tables = _tables(aggregates, distributions)
    log(f"aggregated: {aggregates.num_rows:,} aggregate rows, {distributions.num_rows:,} distribution rows")

    started = time.perf_counter()
    batch = evaluate_batch(config.rules, tables, window_s, history.end_ms)
    seconds["batch"] = time.perf_counter() - started
    log(f"batch: {len(batch)} alerts in {seconds['batch']:.1f} s")

    started = time.perf_counter()
    horizons = cycle_horizons(history.start_ms, history.end_ms, window_s * 1000, args.cycle, args.seed)
    live, round_trips = evaluate_live(config.rules, tables, window_s, horizons)
    seconds["live"] = time.perf_counter() - started
    log(f"live: {len(live)} alerts in {seconds['live']:.1f} s ({len(horizons):,} cycles, {round_trips:,} entries "
        "through JSON)")  # fmt: skip

    work = Path(tempfile.mkdtemp(prefix="airis-mon-monitors-bench-"))
    try:
        stored_layout(work, aggregates, distributions)
        started = time.perf_counter()
        backtest = evaluate_backtest(args.config, work, history.end_ms)
        seconds["backtest"] = time.perf_counter() - started
        log(f"backtest: {len(backtest)} alerts in {seconds['backtest']:.1f} s")
    finally:
        if not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)

    reference = sorted(map(alert_key, batch))
    agreement = {
        "live == batch": sorted(map(alert_key, live)) == reference,
        "backtest == batch": sorted(map(alert_key, backtest)) == reference,
    }
    rows, kinds = score(batch, config.rules, history.incidents, history.decoys)
    judged = [r for r in rows if r["incidents"]]
    targets_met = all((r["precision"] or 0) >= TARGET and (r["recall"] or 0) >= TARGET for r in judged)
    targets_met = targets_met and all(r["fp"] == 0 for r in rows if not r["incidents"])
    report = {
        "days": args.days, "seed": args.seed, "cycle_windows": args.cycle, "config": str(args.config),
        "points": history.points.num_rows, "aggregate_rows": aggregates.num_rows,
        "distribution_rows": distributions.num_rows, "alerts": len(batch), "monitors": rows, "kinds": kinds,
        "seconds": {k: round(v, 2) for k, v in seconds.items()}, "agreement": agreement,
        "targets_met": targets_met, "judged": not args.smoke, "data_dir": str(work) if args.keep_data else None,
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report)
    if not all(agreement.values()):
        for name, ok in agreement.items():
            if not ok:
                _print_difference(name, reference, live if name.startswith("live") else backtest)
        return 1
    return 0 if args.smoke or targets_met else 1


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _print_report(report: dict) -> None:
    print(f"monitors benchmark: {report['days']} days, seed {report['seed']}, {report['points']:,} points -> "
          f"{report['aggregate_rows']:,} aggregate rows + {report['distribution_rows']:,} distributions; "
          f"{report['alerts']} alerts; rules {report['config']}")  # fmt: skip
    header = (f"{'monitor':<20} {'incidents':>9} {'episodes':>8} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>9} "
              f"{'recall':>7} {'median delay':>12} {'max delay':>10} {'decoys alerted':>14}")  # fmt: skip
    print(header)
    for r in report["monitors"]:
        print(f"{r['monitor']:<20} {r['incidents']:>9} {r['episodes']:>8} {r['tp']:>4} {r['fp']:>4} {r['fn']:>4} "
              f"{_fmt(r['precision'], '.3f'):>9} {_fmt(r['recall'], '.3f'):>7} "
              f"{_fmt(r['median_delay_min'], '.0f') + ' min':>12} {_fmt(r['max_delay_min'], '.0f') + ' min':>10} "
              f"{r['decoys_alerted']:>6} of {r['decoys']:<5}")  # fmt: skip
    print("by incident kind:")
    for k in report["kinds"]:
        print(
            f"  {k['monitor'] + ' ' + k['kind']:<34} detected {k['detected']:>3} of {k['incidents']:<3} "
            f"median delay {_fmt(k['median_delay_min'], '.0f')} min, max {_fmt(k['max_delay_min'], '.0f')} min"
        )
    print("wall time: " + ", ".join(f"{name} {s:.1f} s" for name, s in report["seconds"].items())
          + f" (live: cycles of 1 to {2 * report['cycle_windows'] - 1} windows)")  # fmt: skip
    for name, ok in report["agreement"].items():
        print(f"check: {name}: {'OK' if ok else 'MISMATCH'}")
    verdict = "met" if report["targets_met"] else "MISSED"
    print(f"target: precision >= {TARGET} and recall >= {TARGET} per monitor type: {verdict}"
          + ("" if report["judged"] else " (not judged: --smoke)"))  # fmt: skip
    if report["data_dir"]:
        print(f"data kept in {report['data_dir']}")


def _print_difference(name: str, reference: list, other: Sequence) -> None:
    mine = sorted(map(alert_key, other))
    missing = sorted(set(reference) - set(mine))
    extra = sorted(set(mine) - set(reference))
    print(f"{name}: {len(missing)} alert(s) only in batch, {len(extra)} only in the other; first: "
          f"{(missing or extra)[:3]}", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    with one_line_on_missing_extra("python -m benchmarks.monitors"):
        sys.exit(main())
