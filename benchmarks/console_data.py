"""A realistic stored output for the console: what the live runner (``python -m pipelines.serve``) leaves in OUTPUT.

:func:`write_store` writes, deterministically for a seed, under ``output``:

- ``aggregates/date=D/part-live<I>c<CYCLE>-s<SHARD>.parquet``: one file per shard per closed window (the live
  runner's layout: thousands of tiny files a day), ``series`` series x ``windows`` windows of
  ``window_s`` (60 s), 3 metrics (``model_latency`` ms, ``inference_errors`` count, ``feature_drift``), tags
  ``model_id`` and ``instance`` (several instances per model);
- ``alerts/date=D/part-live<I>c<CYCLE>.parquet``: ``alerts`` episodes of the 3 rules of :func:`store_document`, each
  with its trigger, repeats every 10 windows while firing and a resolve when it ended (most episodes), the
  enrichment context (team, owner, repository, registry change and its ``summary`` sentence);
- ``alert_states/...``: per cycle, the pending and firing entries of that evaluation (pending episodes: in the
  newest evaluation only, with no trigger);
- ``events/...``: ``model_version_status`` (alias moves), ``workflow_run`` (deploy and CI) and ``push`` events of
  the models' repositories;
- ``health/...``: one :class:`~airis_mon.schema.HealthRecord` per integration per cycle; ``github`` fails its
  newest checks (degraded), ``ldap`` stopped reporting an hour before the end (stale);
- ``notification_history.jsonl`` (one line per notification and sink, a few dead-lettered), ``acknowledgements.jsonl``
  (acks of some firing episodes) and ``state/outbox/c*.jsonl`` (the newest cycle's notifications, not delivered yet).

Schemas are the real ones (:data:`sinks.parquet.transform.PARQUET_KINDS`, :mod:`airis_mon.schema`). Small and fast:
``write_store(out, series=20, windows=60, alerts=50, seed=1)`` takes well under a second. :func:`store_config`
gives the matching :class:`~airis_mon.config.Config` (rules, ownership map, aggregation window).

Times are epoch ms UTC; the last window ends at ``end_ms`` (default :data:`DEFAULT_END_MS`, fixed, so that the
files are the same for the same seed; pass the current minute for a store that looks live).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from airis_mon.config import Config, parse_config
from airis_mon.schema import Alert, AlertState, Event, HealthRecord, canonical_tags
from sinks.parquet.transform import PARQUET_KINDS

__all__ = [
    "DEFAULT_END_MS",
    "INSTANCE",
    "RULES",
    "TEAMS",
    "StoreShape",
    "store_config",
    "store_document",
    "write_store",
]

#: 2026-11-28T12:00:00Z: the default end of the newest window.
DEFAULT_END_MS = 1_795_867_200_000
#: The live runner's instance id in file names (``part-live<INSTANCE>c<CYCLE>``).
INSTANCE = "0a1b2c3d"
TEAMS = ("growth-ml", "risk-ml", "search-ml", "vision-ml", "platform")
INTEGRATIONS = ("mlflow", "github", "aws_sagemaker", "prometheus", "ldap")
METRICS = (("model_latency", "ms"), ("inference_errors", "count"), ("feature_drift", "score"))
#: The rules of the store (one per metric): name, metric, aggregation, window s, group_by, threshold.
RULES = (
    {"name": "p95_latency", "metric": "model_latency", "aggregation": "p95", "window": 300, "group_by": ["model_id"],
     "comparator": ">", "threshold": 250.0, "severity": "high"},
    {"name": "error_burst", "metric": "inference_errors", "aggregation": "sum", "window": 60, "group_by": None,
     "comparator": ">", "threshold": 40.0, "severity": "critical"},
    {"name": "drift_mean", "metric": "feature_drift", "aggregation": "mean", "window": 60, "group_by": ["model_id"],
     "comparator": ">", "threshold": 0.3, "severity": "warning"},
)  # fmt: skip
_INSTANCES_PER_MODEL = 4
_REPEAT_EVERY = 10  # windows
_SINK = "team-slack"


@dataclass(frozen=True)
class StoreShape:
    """What :func:`write_store` wrote: sizes, times (epoch ms), the files by kind and the episodes by state."""

    output: Path
    series: int
    windows: int
    alerts: int
    window_s: int
    start_ms: int  # start of the first window
    end_ms: int  # end of the newest window
    models: list[str]
    files: dict[str, int]  # kind -> files written
    rows: dict[str, int]  # kind -> rows written
    alert_ids: list[str]  # every episode id, in creation order
    states: dict[str, str] = field(default_factory=dict)  # episode id -> firing | pending | resolved
    acknowledged: dict[str, str] = field(default_factory=dict)  # episode id -> who acknowledged it
    pending_outbox: int = 0  # notifications in state/outbox, not in the history yet
    consistent: list[str] = field(default_factory=list)  # episodes whose stored aggregates breach their rule

    @property
    def series_windows(self) -> int:
        return self.series * self.windows


def _model(index: int) -> str:
    return f"model-{index:03d}"


def store_document(models: list[str], window_s: int = 60) -> dict:
    """The config document (YAML-able) of a store: aggregation window, the :data:`RULES`, the ownership map."""
    rules = []
    for rule in RULES:
        entry = {k: v for k, v in rule.items() if v is not None}
        rules.append(entry)
    ownership = [
        {"model": model, "team": TEAMS[i % len(TEAMS)], "owner": f"owner{i % 7}", "repository": f"acme/{model}"}
        for i, model in enumerate(models)
    ]
    return {"aggregation": {"window_seconds": window_s}, "rules": rules, "enrichment": {"ownership": ownership}}


def store_config(shape: StoreShape, base_dir: Path | None = None) -> Config:
    """The :class:`~airis_mon.config.Config` matching a written store (rules, ownership, window)."""
    return parse_config(store_document(shape.models, shape.window_s), base_dir or shape.output)


def _write(output: Path, kind: str, date: str, name: str, rows: list[tuple] | pa.Table, counts: dict) -> None:
    schema = PARQUET_KINDS[kind][0]
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist([r._asdict() for r in rows], schema=schema)
    folder = output / kind / f"date={date}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"part-{name}.parquet", compression="zstd", store_schema=False)
    counts["files"][kind] = counts["files"].get(kind, 0) + 1
    counts["rows"][kind] = counts["rows"].get(kind, 0) + table.num_rows


def _date(ms: int) -> str:
    return np.datetime_as_string(np.datetime64(ms // 1000, "s"), unit="D").item()


def _episode_id(rule: str, group: str, start_ms: int) -> str:
    return hashlib.sha256(f"{rule}|{group}|{start_ms}".encode()).hexdigest()[:16]


def write_store(
    output: Path,
    series: int,
    windows: int,
    alerts: int,
    seed: int,
    files_per_window: int = 4,
    window_s: int = 60,
    end_ms: int = DEFAULT_END_MS,
    showcase: int = 40,
) -> StoreShape:
    """Write a store of ``series`` x ``windows`` aggregate rows (``files_per_window`` shard files per window),
    ``alerts`` episodes and their events, states, health and delivery history under ``output``; see the module
    docstring. Deterministic for ``seed`` (and ``end_ms``). ``window_s``: the aggregation window, s.
    ``showcase``: the first this many episodes that fired have aggregates that breach their rule over the
    whole episode in their group's series (``StoreShape.consistent``); the others' aggregates are noise."""
    if series < 3 or windows < 2 or alerts < 0 or files_per_window < 1:
        raise ValueError("write_store: series >= 3, windows >= 2, alerts >= 0, files_per_window >= 1")
    output = Path(output)
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    window_ms = window_s * 1000
    end_ms -= end_ms % window_ms
    start_ms = end_ms - windows * window_ms
    n_models = max(1, series // (_INSTANCES_PER_MODEL * len(METRICS)))
    models = [_model(i) for i in range(n_models)]
    counts: dict = {"files": {}, "rows": {}}
    # --- series: (metric index, model, instance)
    series_keys = []
    for index in range(series):
        metric = index % len(METRICS)
        model = models[(index // len(METRICS)) % n_models]
        instance = index // (len(METRICS) * n_models)
        series_keys.append((metric, model, f"i{instance}"))
    names = [METRICS[m][0] for m, _, _ in series_keys]
    units = [METRICS[m][1] for m, _, _ in series_keys]
    tags = [canonical_tags({"instance": inst, "model_id": model}) for _, model, inst in series_keys]
    base = np.array([(120.0, 10.0, 0.1)[m] for m, _, _ in series_keys])
    spread = np.array([(60.0, 8.0, 0.08)[m] for m, _, _ in series_keys])
    shard_of = np.arange(series) % files_per_window
    shard_rows = [np.flatnonzero(shard_of == shard) for shard in range(files_per_window)]
    names_a, units_a, tags_a = (pa.array(v, pa.string()) for v in (names, units, tags))
    source_a = pa.array(["tfserving"] * series, pa.string())
    # --- episodes
    by_cycle: dict[str, dict[int, list]] = {"alerts": {}, "alert_states": {}, "events": {}}
    history: list[dict] = []
    outbox: list[dict] = []
    acks: list[dict] = []
    ids: list[str] = []
    states: dict[str, str] = {}
    acknowledged: dict[str, str] = {}
    breaches: list[tuple] = []  # (metric index, model, instance or None, first and last window, aggregation, target)
    consistent: list[str] = []
    last = windows - 1
    for a in range(alerts):
        rule = RULES[a % len(RULES)]
        for attempt in range(50):  # an episode id is (rule, group, start): draw again when taken
            model = models[rng.randrange(n_models)]
            instance = f"i{rng.randrange(max(1, series // (len(METRICS) * n_models)))}"
            group = {"model_id": model} if rule["group_by"] else {"instance": instance, "model_id": model}
            group_json = canonical_tags(group)
            kind_roll = rng.random()
            pending_windows = rng.randrange(0, 3)
            if kind_roll < 0.05 and attempt < 10:  # pending now: breaching in the newest evaluation, no trigger
                w0 = last - rng.randrange(0, 2)
                trigger_w, end_w = None, None
            else:
                kind_roll = max(kind_roll, 0.05)
                length = rng.randrange(1, 40)
                w0 = rng.randrange(0, max(1, last - pending_windows))
                if kind_roll >= 0.85:  # still firing: started within the last 2 hours
                    w0 = max(0, last - pending_windows - rng.randrange(0, 120))
                trigger_w = min(last, w0 + pending_windows)
                end_w = trigger_w + length if kind_roll < 0.85 else None  # 80 % resolved, 15 % firing
                if end_w is not None and end_w > last:
                    end_w = None
            starts_ms = start_ms + w0 * window_ms
            episode = _episode_id(rule["name"], group_json, starts_ms)
            if episode not in states:
                break
        else:
            raise ValueError(f"write_store: {alerts} episodes do not fit {windows} windows of {series} series")
        states[episode] = "pending"  # until told otherwise below
        ids.append(episode)
        team = TEAMS[models.index(model) % len(TEAMS)]
        context = {"model": model, "ownership": model, "team": team, "repository": f"acme/{model}",
                   "owner": {"username": f"owner{models.index(model) % 7}"}}  # fmt: skip
        if rng.random() < 0.5:
            minutes = rng.randrange(3, 120)
            version = rng.randrange(2, 40)
            text = f"model v{version} became champion"
            context["change"] = {
                "at_ms": starts_ms - minutes * 60_000, "version": str(version), "alias": "champion",
                "change": "model_version_alias.created", "text": text, "minutes_before": minutes,
            }  # fmt: skip
            context["summary"] = f"{rule['name']} breached {minutes} min after {text}"
        threshold = rule["threshold"]
        active_until = last if end_w is None else end_w - 1
        for w in range(w0, active_until + 1):  # alert_states: pending before the trigger, firing after
            state = "pending" if trigger_w is None or w < trigger_w else "firing"
            evaluated = start_ms + (w + 1) * window_ms
            row = AlertState(evaluated, episode, rule["name"], "tfserving", group_json, state, starts_ms, threshold)
            by_cycle["alert_states"].setdefault(w, []).append(row)
        if trigger_w is None:
            continue
        notifications = [(trigger_w, "trigger", threshold * rng.uniform(1.01, 1.5))]
        for w in range(trigger_w + _REPEAT_EVERY, active_until + 1, _REPEAT_EVERY):
            notifications.append((w, "repeat", threshold * rng.uniform(1.01, 1.8)))
        resolved_ms = 0
        if end_w is not None:
            resolved_ms = start_ms + (end_w + 1) * window_ms
            notifications.append((end_w, "resolve", threshold * rng.uniform(0.5, 0.95)))
        states[episode] = "firing" if end_w is None else "resolved"
        if len(breaches) < showcase:
            metric_index = [name for name, _ in METRICS].index(rule["metric"])
            breaches.append((metric_index, model, None if rule["group_by"] else instance, w0, active_until,
                             rule["aggregation"], threshold * rng.uniform(1.05, 1.3)))  # fmt: skip
            consistent.append(episode)
        peak = threshold * 1.1
        context_json = json.dumps(context, sort_keys=True)
        for w, notification, value in notifications:
            at = start_ms + (w + 1) * window_ms
            peak = max(peak, value)
            alert = Alert(
                id=episode, name=f"{rule['name']} on {model}", severity=rule["severity"],
                summary=f"{rule['name']}: {rule['metric']} {rule['aggregation']} {value:.6g} > {threshold:g}",
                description=f"{rule['metric']} {rule['aggregation']} above {threshold:g}", timestamp_ms=at,
                source="tfserving", model_id=model, environment="prod", alert_type="threshold",
                threshold=threshold, current_value=value, peak_value=peak, duration_s=(at - starts_ms) / 1000,
                status="resolved" if notification == "resolve" else "firing", notification=notification,
                starts_at_ms=starts_ms, resolved_at_ms=resolved_ms if notification == "resolve" else 0,
                rule=rule["name"], metric=rule["metric"], group=group_json, labels=canonical_tags({"team": team}),
                silenced=False, context=context_json,
            )  # fmt: skip
            by_cycle["alerts"].setdefault(w, []).append(alert)
            key = f"{_SINK}:{episode}:{notification}:{at}"
            if w == last and rng.random() < 0.5:  # the newest cycle's: still in the outbox
                outbox.append({"key": key, "sink": _SINK, "alert": alert._asdict()})
                continue
            dead = rng.random() < 0.03
            history.append({"key": key, "sink": _SINK, "alert_id": episode, "rule": rule["name"],
                            "notification": notification, "outcome": "dead_lettered" if dead else "delivered",
                            "status": 500 if dead else 200, "attempts": 4 if dead else 1, "retries": 3 if dead else 0,
                            "reason": "HTTP 500 after 4 attempts" if dead else "", "at_ms": at + 150})  # fmt: skip
        if end_w is None and rng.random() < 0.3:
            who = f"owner{rng.randrange(7)}"
            at = start_ms + (trigger_w + 1) * window_ms + 30_000
            acks.append({"type": "ack", "alert_id": episode, "by": who, "via": "slack", "at_ms": at})
            acks.append({"type": "delivery", "alert_id": episode, "sink": _SINK, "notification": "slack_update",
                         "outcome": "delivered", "status": 200, "attempts": 1, "retries": 0, "reason": "",
                         "at_ms": at + 200})  # fmt: skip
            acknowledged[episode] = who
    # --- aggregates, one file per shard per window; showcase episodes breach their rule in their group's series
    breach_rows = {}
    for metric, model, instance, *_ in breaches:
        breach_rows[(metric, model, instance)] = np.flatnonzero(
            [m == metric and mo == model and (instance is None or inst == instance) for m, mo, inst in series_keys]
        )
    for w in range(windows):
        w_start = start_ms + w * window_ms
        count = nprng.integers(5, 60, series)
        mean = np.abs(base + nprng.normal(0, 1, series) * spread)
        low = mean * nprng.uniform(0.3, 0.9, series)
        high = mean * nprng.uniform(1.1, 3.0, series)
        p50 = mean * 0.95
        p95 = mean + (high - mean) * 0.7
        p99 = mean + (high - mean) * 0.9
        for metric, model, instance, first_w, last_w, aggregation, target in breaches:
            if first_w <= w <= last_w:  # a showcase episode: its group breaches its rule for the whole episode
                rows = breach_rows[(metric, model, instance)]
                stat = {"mean": mean, "sum": mean * count, "p95": p95}[aggregation][rows]
                wobble = 1.0 + 0.12 * abs(np.sin(1.7 * w + first_w))  # deterministic, so the noise stream is kept
                factor = np.maximum(1.0, target * wobble / stat)
                for values in (mean, low, high, p50, p95, p99):
                    values[rows] *= factor
        columns = {
            "window_start_ms": pa.array(np.full(series, w_start), pa.int64()),
            "window_end_ms": pa.array(np.full(series, w_start + window_ms), pa.int64()),
            "source": source_a,
            "name": names_a,
            "unit": units_a,
            "tags": tags_a,
            "count": pa.array(count, pa.int64()),
            "sum": pa.array(mean * count, pa.float64()),
            "min": pa.array(low, pa.float64()),
            "max": pa.array(high, pa.float64()),
            "mean": pa.array(mean, pa.float64()),
            "p50": pa.array(p50, pa.float64()),
            "p95": pa.array(p95, pa.float64()),
            "p99": pa.array(p99, pa.float64()),
        }
        table = pa.Table.from_pydict(columns, schema=PARQUET_KINDS["aggregates"][0])
        for shard, rows in enumerate(shard_rows):
            if len(rows):
                _write(output, "aggregates", _date(w_start), f"live{INSTANCE}c{w:08d}-s{shard:03d}",
                       table.take(pa.array(rows)), counts)  # fmt: skip
    # --- context events: per model, an alias move every ~6 h, a deploy run and a push every ~3 h, CI every ~1 h
    for i, model in enumerate(models):
        repository = f"acme/{model}"
        period = min(60, max(5, windows // 12))  # windows between two events of a model
        for w in range(i % period, windows, period):
            at = start_ms + w * window_ms + 17_000
            roll = (w // period + i) % 6
            if roll == 0:
                event = Event(at, "model_version_status", "mlflow", "info", json.dumps(
                    {"model_name": model, "version": str(w // period + 1), "change": "model_version_alias.created",
                     "alias": "champion"}, sort_keys=True))  # fmt: skip
            elif roll in (1, 4):
                workflow = "deploy" if roll == 1 else "ci"
                event = Event(at, "workflow_run", "github", "info", json.dumps(
                    {"repository": repository, "workflow": workflow, "run_number": w + i, "status": "completed",
                     "conclusion": "success" if (w + i) % 9 else "failure", "actor": f"owner{i % 7}"},
                    sort_keys=True))  # fmt: skip
            elif roll == 2:
                event = Event(at, "push", "github", "info", json.dumps(
                    {"repository": repository, "branch": "main", "pusher": f"owner{i % 7}",
                     "after": hashlib.sha1(f"{model}{w}".encode()).hexdigest()}, sort_keys=True))  # fmt: skip
            else:
                continue
            by_cycle["events"].setdefault(w, []).append(event)
    for kind in ("alerts", "alert_states", "events"):
        for w, rows in sorted(by_cycle[kind].items()):
            _write(output, kind, _date(start_ms + w * window_ms), f"live{INSTANCE}c{w:08d}", sorted(rows), counts)
    # --- health: one check per integration per cycle
    for w in range(windows):
        at = start_ms + (w + 1) * window_ms + 500
        rows = []
        for integration in INTEGRATIONS:
            if integration == "ldap" and w > last - 60:
                continue  # stopped reporting an hour ago: stale
            failing = (integration == "github" and w >= last - 2) or rng.random() < 0.01
            rows.append(HealthRecord(at, integration, not failing, "HTTP 503 from the API" if failing else "ok",
                                     round(rng.uniform(20, 400), 3), -1 if failing else rng.randrange(1_000, 90_000),
                                     0 if failing else rng.randrange(10, 500)))  # fmt: skip
        _write(output, "health", _date(at), f"live{INSTANCE}c{w:08d}", rows, counts)
    with open(output / "notification_history.jsonl", "w", encoding="utf-8") as handle:
        for record in sorted(history, key=lambda r: (r["at_ms"], r["key"])):
            handle.write(json.dumps(record, sort_keys=True) + "\n")
    with open(output / "acknowledgements.jsonl", "w", encoding="utf-8") as handle:
        for record in sorted(acks, key=lambda r: (r["at_ms"], r["type"])):
            handle.write(json.dumps(record, sort_keys=True) + "\n")
    (output / "state" / "outbox").mkdir(parents=True, exist_ok=True)
    with open(output / "state" / "outbox" / f"c{windows:08d}.jsonl", "w", encoding="utf-8") as handle:
        for record in outbox:
            handle.write(json.dumps(record, allow_nan=True) + "\n")
    return StoreShape(output, series, windows, alerts, window_s, start_ms, end_ms, models, counts["files"],
                      counts["rows"], ids, states, acknowledged, len(outbox), consistent)  # fmt: skip
