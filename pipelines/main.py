"""The main job: sources -> Normalize -> Aggregate -> rules -> storage.

Run on the bundled sample data (no set-up beyond ``pip install -e .``)::

    python -m pipelines.main --runner DirectRunner

Run configured integrations, or only check a config::

    python -m pipelines.main --config airis-mon.yaml --output ./out
    python -m pipelines.main --config airis-mon.yaml --validate

Options other than the ones below are Beam pipeline options (``--runner``,
``--direct_num_workers`` ...). :func:`build_pipeline` returns every
PCollection so that tests and other jobs can assert on them.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import apache_beam as beam
import pyarrow.compute as pc
from apache_beam.options.pipeline_options import StandardOptions

from airis_mon import streams
from airis_mon.beamutil import InArrivalWindows
from airis_mon.config import Config, config_warnings, load_config, warn_about
from airis_mon.errors import ConfigError
from airis_mon.extras import one_line_on_missing_extra
from airis_mon.logs import report_failure
from airis_mon.progress import READ_NAMESPACE_PREFIX, READ_UNITS, ProgressLine
from airis_mon.registry import get_component
from airis_mon.schema import ALERT_SEVERITIES
from pipelines.live.checkpoint import (
    CARRY_FILE,
    CONTEXT_FILE,
    DATA_END_FILE,
    HEALTH_FILE,
    NOTIFY_POLICY_FILE,
    OUTBOX_FILE,
    RULES_FILE,
    encode_context,
    encode_data_end,
    encode_entries,
    encode_health,
    encode_outbox,
    encode_policy,
)
from pipelines.live.transforms import (
    OPEN_POINTS,
    CycleSpec,
    ReadCarriedPoints,
    SplitAtHorizon,
    WriteCarriedPoints,
    WriteStagingFile,
)
from pipelines.options import DEFAULT_OUTPUT, AirisMonOptions, beam_options
from sinks.notification_log import NotificationLogConfig
from sinks.parquet import ParquetSinkConfig
from sources.gateway.config import GatewayConfig
from sources.gateway.spool import closed_segments, open_segment_lines
from transforms.aggregate import (
    AGGREGATE_PARTS,
    DISTRIBUTION_PARTS,
    DISTRIBUTIONS,
    POINT_PARTS,
    Aggregate,
    Distributions,
)
from transforms.enrich import EnrichAlerts, EnrichEvents, EnrichPoints
from transforms.enrich.context import CONTEXT_EVENT_TYPES
from transforms.health import BuildHealthReport, HealthAsMetrics
from transforms.normalize import Normalize
from transforms.notify_policy.transform import NotifyByPolicy
from transforms.rules.batch import POINTS as RULE_POINTS
from transforms.rules.batch import EvaluateRules
from transforms.rules.checkpointed import ENTRIES, EvaluateRulesFromCheckpoint, alert_states_of
from transforms.rules.notify import ApplySilences, RouteAlerts
from transforms.rules.scored import distribution_metrics
from transforms.rules.streaming import EvaluateRulesStreaming

__all__ = ["build_pipeline", "notification_sinks", "parse_args", "run", "run_key_for"]

LOG = logging.getLogger("airis_mon.main")
#: Runners that run the job in this process: ``run`` waits for them and prints the summary.
LOCAL_RUNNERS = frozenset({"DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner", "FnApiRunner",
                           "PrismRunner", "InteractiveRunner"})  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The job's options (:class:`~pipelines.options.AirisMonOptions`) and ``--validate``; the rest is Beam's."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.main", description=__doc__.split("\n\n")[0])
    AirisMonOptions._add_argparse_args(parser)
    parser.add_argument(
        "--validate", action="store_true", help="check the config, print every error, and exit (0 if valid)"
    )
    from airis_mon.logs import add_logging_arguments  # consumed here, so Beam never sees them

    add_logging_arguments(parser, "WARNING")
    return parser.parse_known_args(argv)


def distributions_of(config: Config) -> Distributions | None:
    """Which metrics keep per-window distributions: the ones drift rules read and ``aggregation.distributions``
    (None: none)."""
    metrics = distribution_metrics(config.rules) | frozenset(config.aggregation.distributions)
    return Distributions(metrics, config.aggregation.relative_accuracy) if metrics else None


def run_key_for(config: Config) -> str:
    """A digest of the input's identity (files and sizes, or source configs).

    Storage file names carry it, so re-running the same input overwrites the
    same files instead of adding rows, and a run over other input (new spool
    segments, changed files) adds files beside them.
    """
    identity = []
    for integration in config.integrations:
        files = getattr(integration, "files", None)
        if callable(files):
            identity.append([(path, os.path.getsize(path)) for path in files()])
        elif isinstance(integration, GatewayConfig):
            # The spool's closed segments (processed ones move to done/): each run over the spool has its own
            # files, and no run replaces another's rows.
            identity.append([(path.name, path.stat().st_size) for path in closed_segments(integration.spool)])
        else:
            identity.append(integration.model_dump(mode="json"))
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _storage_sinks(config: Config, output: str) -> list:
    """The configured storage sinks (Parquet, BigQuery, ...), or Parquet under ``output`` when there is none."""
    sinks = [s for s in config.sinks if get_component("sink", s.type).role == "storage"]
    if not sinks:
        sinks = [ParquetSinkConfig(name="storage")]
    resolved = []
    for sink in sinks:
        if isinstance(sink, ParquetSinkConfig) and not sink.path:
            if "://" in output:
                problem = (f"sinks: Parquet storage writes local files, not {output}; on Dataflow configure a "
                           "`type: bigquery` storage sink (or give the parquet sink a path)")  # fmt: skip
                raise ConfigError([problem])
            sink = sink.model_copy(update={"path": str(Path(output).resolve())})
        resolved.append(sink)
    return resolved


def _write_storage(sink, run_key: str, streaming_window_s: int | None) -> beam.PTransform:
    transform = get_component("sink", sink.type).transform_class()
    if "streaming_window_s" in inspect.signature(transform).parameters:
        return transform(sink, run_key, streaming_window_s=streaming_window_s)
    return transform(sink, run_key)


def notification_sinks(config: Config, output: str) -> list:
    """The configured notification sinks, a ``notification_log`` without a path writing under ``output``."""
    sinks = [s for s in config.sinks if get_component("sink", s.type).role == "notify"]
    default_dir = Path(output).resolve()
    return [
        s
        if getattr(s, "path", True)
        else s.model_copy(update={"path": str(default_dir / f"notifications-{s.name}.jsonl")})
        for s in sinks
    ]


def _sources(config: Config, streaming: bool) -> list[tuple[str, beam.PTransform]]:
    """``(integration name, ReadFromX transform)`` for every configured integration."""
    sources = []
    for integration in config.integrations:
        source_class = get_component("source", integration.type).transform_class()
        if "bounded" in inspect.signature(source_class).parameters:
            source = source_class(integration, bounded=not streaming)  # batch: pollers poll once
        else:
            source = source_class(integration)
        sources.append((integration.name, source))
    return sources


def _split_at_horizon(pipeline: beam.Pipeline, points: tuple, cycle: CycleSpec) -> tuple[tuple, list]:
    """A live cycle: the points of windows closing now (and carried ones), the rest carried, late ones dead."""
    carried = pipeline | "ReadCarried" >> ReadCarriedPoints(cycle.carry)
    closing, still_open, late = [], [], []
    for index, tables in enumerate((*points, carried)):
        split = tables | f"SplitAtHorizon[{index}]" >> SplitAtHorizon(
            cycle.closed_until_ms, cycle.previous_closed_until_ms
        )
        closing.append(split[streams.POINTS])
        still_open.append(split[OPEN_POINTS])
        late.append(split[streams.DEAD_LETTERS])
    _ = still_open | "OpenPoints" >> beam.Flatten() | "StageCarry" >> WriteCarriedPoints(cycle.staged(CARRY_FILE))
    window_ms = cycle.window_ms
    _ = (
        (*closing, *still_open)
        | "AllCyclePoints" >> beam.Flatten()
        | "NewestWindowEnd" >> beam.FlatMap(_newest_window_end, window_ms)
        | "StageDataEnd" >> WriteStagingFile(cycle.staged(DATA_END_FILE), encode_data_end)
    )
    return tuple(closing), late


def _newest_window_end(table, window_ms: int) -> list[int]:
    """End (epoch ms) of the window of the newest point of a table; nothing for an empty one."""
    if not table.num_rows:
        return []
    newest = int(pc.max(table.column("timestamp_ms")).as_py())
    return [newest - newest % window_ms + window_ms]


def _count_dead_letter(dead) -> None:
    beam.metrics.Metrics.counter("dead_letters", dead.component.split(":")[0]).inc()


def _counted(outputs: dict, integration: str) -> dict:
    """A source's outputs, counting points and events in (counters ``integration:NAME/points_in``, ...)."""
    namespace = f"integration:{integration}"
    points = beam.metrics.Metrics.counter(namespace, "points_in")
    events = beam.metrics.Metrics.counter(namespace, "events_in")

    def count_points(table):
        points.inc(table.num_rows)
        return table

    def count_event(event):
        events.inc()
        return event

    return {
        **outputs,
        streams.POINTS: outputs[streams.POINTS] | f"CountPoints[{integration}]" >> beam.Map(count_points),
        streams.EVENTS: outputs[streams.EVENTS] | f"CountEvents[{integration}]" >> beam.Map(count_event),
    }


def build_pipeline(pipeline: beam.Pipeline, config: Config, output: str = DEFAULT_OUTPUT, num_shards: int = 16,
                   streaming: bool | None = None, cycle: CycleSpec | None = None) -> dict:  # fmt: skip
    """Add the whole graph to ``pipeline``; return its PCollections by name.

    Keys: ``points`` (normalized Arrow batches; health points are aggregated and stored, not in here),
    ``aggregates``, ``events``, ``alerts``, ``routed`` (sink name, alert),
    ``dead_letters``, ``health``, ``health_report``, ``written``, and
    ``sources``: the source transforms (call their ``on_success()``, where they
    have one, once the run succeeded), and ``run_key``, the name storage files carry.

    ``streaming`` (default: the pipeline's ``--streaming`` option): event-time
    windows with ``aggregation.allowed_lateness`` for the aggregates, the
    stateful rule runner (:class:`~transforms.rules.streaming.EvaluateRulesStreaming`),
    the enrichment context as a refreshed side input, and health and stored
    rows in windows of ``aggregation.window_seconds``. Step labels are explicit
    and stable, so ``--update`` of a running job maps its state.

    ``cycle`` (:class:`~pipelines.live.transforms.CycleSpec`): one cycle of the
    live runner (``pipelines.serve``), batch otherwise: its sources read the
    cycle's plan; only windows that close in this cycle are aggregated, stored
    and evaluated (the rest is carried, late points are dead letters); rules
    continue from the checkpoint's entries; notifications go to the cycle's
    outbox instead of the sinks (the runner delivers them after the commit).
    """
    if streaming is None:
        streaming = pipeline.options.view_as(StandardOptions).streaming
    window_s = config.aggregation.window_seconds
    source_outputs = []
    sources = []
    for name, source in cycle.sources if cycle else _sources(config, streaming):
        sources.append(source)
        outputs = pipeline | f"Read[{name}]" >> source
        source_outputs.append(_counted(outputs, name) if cycle else outputs)

    def merged(name: str) -> beam.PCollection:
        parts = [outputs[name] for outputs in source_outputs]
        if not parts:
            return pipeline | f"No{name.title()}" >> beam.Create([])
        return parts | f"Merge{name.title().replace('_', '')}" >> beam.Flatten()

    normalized = merged(streams.POINTS) | "Normalize" >> Normalize()
    health = merged(streams.HEALTH)
    if streaming:
        health = health | "HealthWindows" >> InArrivalWindows(window_s)
    events = merged(streams.EVENTS) | "EnrichEvents" >> EnrichEvents(config.enrichment)
    owned_points = normalized[streams.POINTS] | "EnrichPoints" >> EnrichPoints(config.enrichment)
    points = (owned_points, health | "HealthAsMetrics" >> HealthAsMetrics())
    live_dead_letters = []
    if cycle:
        points, live_dead_letters = _split_at_horizon(pipeline, points, cycle)
    distributions = distributions_of(config)
    aggregated = points | "Aggregate" >> Aggregate(
        window_s,
        num_shards,
        keep_points=True,
        streaming=streaming,
        allowed_lateness_s=config.aggregation.allowed_lateness_s,
        distributions=distributions,
    )
    aggregates = aggregated["aggregates"]
    rule_input = aggregates
    if distributions is not None:  # drift rules read the distribution tables beside the aggregates
        rule_input = (aggregates, aggregated[DISTRIBUTIONS]) | "RuleInput" >> beam.Flatten()
    rule_dead_letters = []
    alert_states = None
    if cycle:
        evaluated = rule_input | "EvaluateRules" >> EvaluateRulesFromCheckpoint(
            config.rules, window_s, cycle.rule_entries, cycle.closed_until_ms, cycle.until_ms
        )
        rule_dead_letters.append(evaluated[streams.DEAD_LETTERS])
        _ = evaluated[ENTRIES] | "StageRules" >> WriteStagingFile(cycle.staged(RULES_FILE), encode_entries)
        alert_states = evaluated[ENTRIES] | "AlertStates" >> beam.FlatMap(alert_states_of, cycle.closed_until_ms)
    elif streaming:
        evaluated = rule_input | "EvaluateRules" >> EvaluateRulesStreaming(config.rules, window_s)
        rule_dead_letters.append(evaluated[streams.DEAD_LETTERS])
    else:
        evaluated = rule_input | "EvaluateRules" >> EvaluateRules(config.rules, window_s, with_points=True)
    raw_alerts = evaluated["alerts"]
    context_events = events
    if cycle:
        carried_context = pipeline | "CarriedContext" >> beam.Create(cycle.context_events)
        context_events = (events, carried_context) | "ContextEvents" >> beam.Flatten()
        _ = (
            context_events
            | "SelectContext" >> beam.Filter(lambda event: event.event_type in CONTEXT_EVENT_TYPES)
            | "StageContext" >> WriteStagingFile(cycle.staged(CONTEXT_FILE), encode_context)
        )
    alerts = (
        raw_alerts
        | "ApplySilences" >> ApplySilences(config.silences)
        | "EnrichAlerts" >> EnrichAlerts(config.enrichment, context_events, streaming=streaming)
    )
    if config.notification_policy is not None:  # one notification per group and change, as Alertmanager
        if streaming:
            raise ConfigError(["notification_policy: not supported with --streaming yet; use a batch run or the "
                               "live runner (python -m pipelines.serve)"], "config")  # fmt: skip
        policy = NotifyByPolicy(config.notification_policy, cycle.notify_policy_state if cycle else None,
                                (cycle.until_ms or cycle.closed_until_ms) if cycle else None)  # fmt: skip
        routed, policy_state = alerts | "NotifyByPolicy" >> policy
        if cycle:  # the dispatcher's groups, timers and notification log, for the next cycle
            _ = policy_state | "StageNotifyPolicy" >> WriteStagingFile(cycle.staged(NOTIFY_POLICY_FILE), encode_policy)
    else:
        routed = alerts | "RouteAlerts" >> RouteAlerts(config.routes, config.default_route, config.enrichment)
    sink_dead_letters = []
    if cycle:  # delivered by the runner from the outbox once the cycle has committed: exactly once
        _ = routed | "StageOutbox" >> WriteStagingFile(cycle.staged(OUTBOX_FILE), encode_outbox)
    for sink in [] if cycle else notification_sinks(config, output):
        transform = get_component("sink", sink.type).transform_class()
        sink_alerts = (
            routed
            | f"Select[{sink.name}]" >> beam.Filter(lambda routed_alert, wanted: routed_alert[0] == wanted, sink.name)
            | f"Alerts[{sink.name}]" >> beam.Values()
        )
        sink_dead_letters.append((sink_alerts | f"Write[{sink.name}]" >> transform(sink))[streams.DEAD_LETTERS])
    dead_letters = (
        merged(streams.DEAD_LETTERS),
        normalized[streams.DEAD_LETTERS],
        *live_dead_letters,
        *rule_dead_letters,
        *sink_dead_letters,
    ) | "AllDeadLetters" >> beam.Flatten()
    report = health | "HealthReport" >> BuildHealthReport()
    if cycle:
        _ = health | "StageHealth" >> WriteStagingFile(cycle.staged(HEALTH_FILE), encode_health)
    _ = dead_letters | "CountDeadLetters" >> beam.Map(_count_dead_letter)

    storage_inputs = {
        "metrics": aggregated[POINT_PARTS],  # the aggregation's shuffle also groups the stored points
        "aggregates": aggregated[AGGREGATE_PARTS],
        "rule_metrics": evaluated[RULE_POINTS],  # points rules derive: an slo rule's error budget remaining
        "events": events,
        "alerts": alerts,
        "dead_letters": dead_letters,
        "health": health,  # every poll's HealthRecord, for the console's integration health page
        "health_report": report,
    }
    if alert_states is not None:
        storage_inputs["alert_states"] = alert_states
    if distributions is not None:
        storage_inputs["distributions"] = aggregated[DISTRIBUTION_PARTS]
    run_key = cycle.run_key if cycle else run_key_for(config)
    written = [
        storage_inputs | f"Write[{sink.name}]" >> _write_storage(sink, run_key, window_s if streaming else None)
        for sink in _storage_sinks(config, output)
    ]
    return {
        "points": owned_points,
        "aggregates": aggregates,
        "events": events,
        "alerts": alerts,
        "routed": routed,
        "dead_letters": dead_letters,
        "health": health,
        "health_report": report,
        "written": written,
        "sources": sources,
        "run_key": run_key,
    }


#: Reading a local run's metrics: the thread's stack (bytes) and recursion limit (frames). FnApiRunner chains one
#: lazy generator per bundle into its metrics (``monitoring_infos.consolidate``), read recursively: a
#: ``--streaming`` run of the sample day (~1,500 bundles) passes Python's default limit of 1,000, and each
#: level takes ~20 KB of C stack. 30,000 levels fit in 1 GiB; deeper ones raise, never overflow the stack.
_METRICS_STACK_BYTES = 1 << 30
_METRICS_RECURSION_LIMIT = 30_000


def _counters(result) -> dict[tuple[str, str], int]:
    """Every user counter of a finished run, by (namespace, name), summed over steps (committed values where
    the runner has them, else attempted). Read once, in a thread with a deep stack (see
    :data:`_METRICS_STACK_BYTES`); raises ``RecursionError`` for a run of more than ~30,000 bundles."""
    read: dict[str, object] = {}

    def read_metrics() -> None:
        try:
            read["counters"] = result.metrics().query()["counters"]
        except RecursionError as error:
            read["error"] = error

    limit = sys.getrecursionlimit()
    stack = threading.stack_size(_METRICS_STACK_BYTES)
    try:
        sys.setrecursionlimit(max(limit, _METRICS_RECURSION_LIMIT))
        reader = threading.Thread(target=read_metrics, name="read-metrics")
        reader.start()
        reader.join()
    finally:
        threading.stack_size(stack)
        sys.setrecursionlimit(limit)
    if "error" in read:
        raise read["error"]
    totals: dict[tuple[str, str], int] = {}
    for counter in read["counters"]:
        key = (counter.key.metric.namespace, counter.key.metric.name)
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[key] = totals.get(key, 0) + value
    return totals


def _counter(counters: dict[tuple[str, str], int], namespace: str, name: str) -> int:
    """One counter of :func:`_counters` (0 when nothing counted it)."""
    return counters.get((namespace, name), 0)


def _sink_counter(counters: dict[tuple[str, str], int], name: str) -> int:
    """A counter summed over every delivering sink (namespaces ``sink:NAME``)."""
    return sum(value for (namespace, counted), value in counters.items()
               if counted == name and namespace.startswith("sink:"))  # fmt: skip


def _print_summary(result, config: Config, outputs: list[str], seconds: float) -> None:
    """Print the run's counts (from its counters), its duration (``seconds``) and the output files."""
    counters = _counters(result)

    def count(namespace: str, name: str) -> int:
        return _counter(counters, namespace, name)

    dead = {name: value for (namespace, name), value in counters.items() if namespace == "dead_letters" and value}
    triggers = {s: count("rules", f"trigger_{s}") for s in reversed(ALERT_SEVERITIES)}
    resolves = sum(count("rules", f"resolve_{s}") for s in ALERT_SEVERITIES)
    files = _folders_and_files(outputs)
    lines = ["AIRIS-MON run summary", *_read_lines(counters, config)]
    lines += [
        f"  normalized        {count('normalize', 'points_normalized'):>10,} metric points",
        f"  dead-lettered     {sum(dead.values()):>10,} records"
        + (f" ({', '.join(f'{name} {n:,}' for name, n in sorted(dead.items()))})" if dead else ""),
        f"  windows           {count('aggregate', 'series_windows'):>10,} series-windows"
        f" of {config.aggregation.window_seconds} s",
        f"  alerts            {sum(triggers.values()):>10,} triggered ("
        + ", ".join(f"{s} {n}" for s, n in triggers.items() if n)
        + f"), {resolves} resolved, {count('rules', 'silenced')} silenced notifications",
        f"  notifications     {count('notification_log', 'notifications_written'):>10,} logged,"
        f" {_sink_counter(counters, 'sent'):,} delivered, {_sink_counter(counters, 'retried'):,} retries,"
        f" {_sink_counter(counters, 'dead_lettered'):,} dead-lettered",
        *_health_lines(outputs),
        f"  files written     {sum(files.values()):>10,} (listed below)",
        f"  took              {seconds:>10.1f} s",
        "  outputs:",
    ]
    lines.extend(f"    {entry}" for entry in sorted(files))
    for gateway in (i for i in config.integrations if isinstance(i, GatewayConfig) and i.handoff == "spool"):
        waiting = open_segment_lines(gateway.spool)
        if waiting:
            lines.append(f"  note: gateway {gateway.name!r} holds {waiting:,} acknowledged request(s) in its open "
                         f"spool segment; it closes within max_segment_age_s ({gateway.max_segment_age_s:g} s) and "
                         "the next run reads them")  # fmt: skip
    print("\n".join(lines))


def _health_lines(outputs: list[str]) -> list[str]:
    """The health report's overall status and, when degraded, each unhealthy integration with its message."""
    report_path = next((Path(p) for p in outputs if Path(p).name == "health_report.json" and Path(p).is_file()), None)
    if report_path is None:
        return []
    report = json.loads(report_path.read_text(encoding="utf-8"))
    unhealthy = {name: entry for name, entry in report["integrations"].items() if entry["status"] != "healthy"}
    entries = len(report["integrations"])
    counted = f" ({len(unhealthy)} of {entries} in the health report)" if unhealthy else ""
    lines = [f"  {'health':<18}{report['overall_status']:>10}{counted}"]
    lines += [f"{'':<32}{name}: {entry['message']}" for name, entry in sorted(unhealthy.items())]
    return lines


def _read_lines(counters: dict[tuple[str, str], int], config: Config) -> list[str]:
    """``records read`` per integration, each in its source's unit (counters ``read:NAME/UNIT``)."""
    lines = []
    for integration in config.integrations:
        namespace = READ_NAMESPACE_PREFIX + integration.name
        counted = [(unit, counters.get((namespace, unit), 0)) for unit in READ_UNITS]
        counted = [(unit, n) for unit, n in counted if n] or [("records", 0)]
        for unit, n in counted:
            label = "records read" if not lines else ""
            lines.append(f"  {label:<18}{n:>10,} {READ_UNITS[unit]} ({integration.type} {integration.name!r})")
    return lines or [f"  {'records read':<18}{0:>10} (no integrations configured)"]


def _folders_and_files(paths: list[str]) -> dict[str, int]:
    """Each existing file (a notification log a run without alerts never created is left out) or, for a
    partition folder holding several part files, the folder (``FOLDER/ (16 parts)``), with its file count."""
    existing = [Path(path) for path in paths if Path(path).is_file()]
    parts: dict[Path, int] = {}
    for path in existing:
        if path.name.startswith("part-"):
            parts[path.parent] = parts.get(path.parent, 0) + 1
    entries: dict[str, int] = {}
    for path in existing:
        if path.name.startswith("part-") and parts[path.parent] > 1:
            entries[f"{path.parent}/ ({parts[path.parent]} parts)"] = parts[path.parent]
        else:
            entries[str(path)] = 1
    return entries


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args, beam_args = parse_args(argv)
    try:
        config = load_config(args.config, output=args.output)
    except ConfigError as error:
        report_failure(error)
        return 2
    if args.validate:
        print(
            f"{args.config or 'bundled sample config'}: valid "
            f"({len(config.integrations)} integrations, {len(config.rules)} rules, {len(config.sinks)} sinks)"
        )
        for warning in config_warnings(config):
            print(f"warning: {warning}")
        return 0
    warn_about(config)  # a config that does nothing useful says what is missing
    started = time.monotonic()
    options = beam_options(beam_args)
    pipeline = beam.Pipeline(options=options)
    try:
        graph = build_pipeline(pipeline, config, args.output, args.num_shards)
    except ConfigError as error:
        report_failure(error)
        return 2
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    if runner not in LOCAL_RUNNERS:
        # A service runner (Dataflow, or a flex template launch): the job runs on; do not block on it.
        result = pipeline.run()
        job_id = result.job_id() if hasattr(result, "job_id") else None
        print(f"AIRIS-MON submitted to {runner}" + (f": job {job_id}" if job_id else "") + f" (state {result.state})")
        return 0
    with ProgressLine("AIRIS-MON running"):  # on a terminal: records read, points, windows, alerts so far
        result = pipeline.run()
        result.wait_until_finish()
    for source in graph["sources"]:
        if hasattr(source, "on_success"):
            source.on_success()  # e.g. the gateway spool marks its segments processed
    run_key = graph["run_key"]  # computed before the run: its spool segments have moved to done/ since
    outputs = [
        str(path)
        for sink in _storage_sinks(config, args.output)
        for path in sorted(Path(sink.path).rglob("*"))
        if path.is_file() and (run_key in path.name or path.name == "health_report.json")
    ]
    outputs += [s.path for s in notification_sinks(config, args.output) if isinstance(s, NotificationLogConfig)]
    _print_summary(result, config, outputs, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    from airis_mon.logs import setup_logging_from_argv

    setup_logging_from_argv("main", "WARNING")
    with one_line_on_missing_extra("python -m pipelines.main"):
        sys.exit(run())
