"""Backfill CloudWatch history: fetch a past range, store it, and see which
alerts the rules would have raised.

    python -m pipelines.backfill --config airis-mon.yaml --start 2026-11-01T00:00:00Z --end 2026-11-28T00:00:00Z \\
        [--output ./airis-mon-output] [--integration sagemaker-prod]

For every ``type: cloudwatch`` integration of the config (or the one named):

1. The range is split into chunks that respect CloudWatch's limits
   (:func:`sources.cloudwatch.planner.plan_chunks`): the period follows the
   data's age (60 s up to 15 days back, 300 s up to 63 days, 3600 s up to
   455 days) and each ``GetMetricData`` call stays under 100,800 datapoints.
2. Each chunk is fetched (with the shared retries), converted in bulk to an
   Arrow table of raw points (:func:`sources.cloudwatch.points.points_table`)
   and written atomically to ``OUTPUT/backfill/NAME/chunk-START-END-PERIOD.parquet``.
   A chunk file that exists is not fetched again: an interrupted backfill
   resumes where it stopped. On a terminal, a progress line shows chunks done
   and the ETA. Memory holds one ``GetMetricData`` page and one chunk at a time.
3. The chunks then run through the main job's graph (normalize, aggregate,
   storage) as a ``point_files`` source, in slices of about 3 million points
   (the local runner holds a run's shuffle in memory), and one last run
   evaluates the configured rules over the stored aggregates of every slice,
   in time order, through the same engine as a live run. Storage file
   names derive from the chunk files, so backfilling the same range twice
   gives the same files, not duplicated rows. Notification sinks and routes
   are left out: a backfill stores its alerts, it never pages anyone.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq

from airis_mon.config import Config, load_config
from airis_mon.errors import AirisError, ConfigError
from airis_mon.extras import COMMAND_EXTRAS, install_hint, one_line_on_missing_extra, require
from airis_mon.logs import report_failure
from airis_mon.progress import ProgressLine
from airis_mon.schema import Event
from airis_mon.timeutil import to_epoch_ms
from pipelines.backtest import ReadAggregates, stored_window_seconds
from pipelines.main import build_pipeline, run_key_for
from pipelines.options import beam_options
from sinks.parquet import ParquetSinkConfig, WriteToStorage
from sources.cloudwatch.config import CloudWatchConfig
from sources.point_files import PointFilesConfig
from transforms.enrich import EnrichAlerts
from transforms.rules.batch import EvaluateRules
from transforms.rules.notify import ApplySilences

__all__ = ["backfill_config", "plan_slices", "run", "store_and_evaluate"]


def _parquet_storage(config: Config, output: str) -> list[ParquetSinkConfig]:
    """The config's Parquet storage (default: under ``output``): a backfill reads its aggregates back from it."""
    storage = [s for s in config.sinks if isinstance(s, ParquetSinkConfig)] or [ParquetSinkConfig(name="storage")]
    return [s if s.path else s.model_copy(update={"path": str(Path(output).resolve())}) for s in storage]


def backfill_config(config: Config, chunk_files: dict[str, list[Path]], output: str) -> Config:
    """The main job's config for the fetched chunks: same aggregation, rules and silences; storage only."""
    integrations = tuple(
        PointFilesConfig.model_validate({"name": f"backfill-{name}", "paths": [str(p) for p in paths]})
        for name, paths in chunk_files.items()
        if paths
    )
    storage = _parquet_storage(config, output)
    no_default_route = config.default_route.model_copy(update={"sinks": []})
    update = {"integrations": integrations, "sinks": tuple(storage), "routes": (), "default_route": no_default_route}
    return config.model_copy(update=update)


#: Points per Beam run of the store step. The local runner keeps a run's whole shuffle in memory
#: (about 80 bytes a point), so a long range is stored in slices of about this many points.
DEFAULT_SLICE_POINTS = 3_000_000


def _chunk_start(path: Path) -> int:
    return int(path.name.split("-")[1])


def plan_slices(chunk_files: dict[str, list[Path]], max_points: int) -> list[dict[str, list[Path]]]:
    """Consecutive chunks (all integrations, in time order) grouped into slices of at most ``max_points``
    points each (a bigger chunk is a slice of its own); point counts come from the Parquet footers."""
    chunks = sorted(((_chunk_start(p), name, p) for name, paths in chunk_files.items() for p in paths),
                    key=lambda item: (item[0], item[1]))  # fmt: skip
    slices: list[dict[str, list[Path]]] = []
    current: dict[str, list[Path]] = {}
    points = 0
    for _, name, path in chunks:
        rows = pq.read_metadata(path).num_rows
        if current and points + rows > max_points:
            slices.append(current)
            current, points = {}, 0
        current.setdefault(name, []).append(path)
        points += rows
    if current:
        slices.append(current)
    return slices


def _run(pipeline: beam.Pipeline) -> beam.runners.runner.PipelineResult:
    result = pipeline.run()
    result.wait_until_finish()
    return result


def store_and_evaluate(
    config: Config,
    chunk_files: dict[str, list[Path]],
    output: str,
    beam_args: Sequence[str] = (),
    slice_points: int = DEFAULT_SLICE_POINTS,
) -> str:
    """Step 3 of the module docstring; returns the run key of the stored alerts.

    a. Each slice (:func:`plan_slices`) runs the main job's graph without rules:
       normalize, aggregate, store metrics and aggregates. Memory is bounded by
       the slice, not by the range.
    b. One run evaluates the rules over the aggregates those slices stored, in
       time order, through the same engine as a live run, so an episode that
       spans two slices is one episode, and stores the alerts.
    """
    store_only = config.model_copy(update={"rules": ()})
    aggregate_files = []
    run_keys = []
    for part in plan_slices(chunk_files, slice_points):
        part_config = backfill_config(store_only, part, output)
        run_key = run_key_for(part_config)
        _run_graph(part_config, output, beam_args)
        storage = Path(part_config.sinks[0].path)
        aggregate_files += sorted(str(p) for p in storage.glob(f"aggregates/date=*/part-{run_key}-*.parquet"))
        run_keys.append(run_key)
    alerts_key = hashlib.sha256(" ".join(run_keys).encode()).hexdigest()[:16]
    if not config.rules or not aggregate_files:
        return alerts_key
    window_s = stored_window_seconds(aggregate_files)
    storage = _parquet_storage(config, output)[0]
    pipeline = beam.Pipeline(options=beam_options(beam_args))
    no_events = pipeline | "NoEvents" >> beam.Create([]).with_output_types(Event)
    alerts = (
        pipeline
        | "AggregateFiles" >> beam.Create(aggregate_files)
        | "ReadAggregates" >> beam.ParDo(ReadAggregates(None, None))
        | "EvaluateRules" >> EvaluateRules(config.rules, window_s)
        | "ApplySilences" >> ApplySilences(config.silences)
        | "EnrichAlerts" >> EnrichAlerts(config.enrichment, no_events)
    )
    _ = {"alerts": alerts} | "StoreAlerts" >> WriteToStorage(storage, alerts_key)
    _run(pipeline)
    return alerts_key


def _run_graph(config: Config, output: str, beam_args: Sequence[str]) -> None:
    pipeline = beam.Pipeline(options=beam_options(beam_args))
    build_pipeline(pipeline, config, output)
    _run(pipeline)


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.backfill",
        description=__doc__.split("\n\n")[0],
        epilog=f"Needs: {install_hint(COMMAND_EXTRAS['pipelines.backfill'])}",
    )
    parser.add_argument("--config", required=True, help="YAML config with `type: cloudwatch` integrations and rules")
    parser.add_argument("--start", required=True, help="ISO-8601 start of the range (inclusive)")
    parser.add_argument("--end", required=True, help="ISO-8601 end of the range (exclusive)")
    parser.add_argument("--output", default="./airis-mon-output", help="storage folder. Default: ./airis-mon-output")
    parser.add_argument("--integration", default=None, help="only this cloudwatch integration")
    parser.add_argument(
        "--slice-points",
        type=int,
        default=DEFAULT_SLICE_POINTS,
        help=f"points per storage run (memory: about 80 bytes a point). Default: {DEFAULT_SLICE_POINTS}",
    )
    from airis_mon.logs import add_logging_arguments  # consumed here, so Beam never sees them

    add_logging_arguments(parser, "WARNING")
    args, beam_args = parser.parse_known_args(argv)
    require("python -m pipelines.backfill", *COMMAND_EXTRAS["pipelines.backfill"])
    from sources.cloudwatch.backfill import fetch_chunks

    try:
        config = load_config(args.config)
        start_s, end_s = to_epoch_ms(args.start) // 1000, to_epoch_ms(args.end) // 1000
        if end_s <= start_s:
            raise ConfigError("--end must be after --start")
        sources = [i for i in config.integrations if isinstance(i, CloudWatchConfig)]
        if args.integration:
            sources = [i for i in sources if i.name == args.integration]
        if not sources:
            raise ConfigError("integrations: no `type: cloudwatch` integration to backfill")
        chunk_files = {
            source.name: fetch_chunks(source, start_s, end_s, Path(args.output) / "backfill" / source.name)
            for source in sources
        }
    except (AirisError, ValueError) as error:
        report_failure(error)
        return 2
    with ProgressLine("AIRIS-MON backfill storing"):  # on a terminal: points, windows and alerts so far
        store_and_evaluate(config, chunk_files, args.output, beam_args, args.slice_points)
    total = sum(len(paths) for paths in chunk_files.values())
    print(f"AIRIS-MON backfill {args.start} .. {args.end}: {total} chunk(s) stored under {Path(args.output).resolve()}")
    return 0


if __name__ == "__main__":
    from airis_mon.logs import setup_logging_from_argv

    setup_logging_from_argv("backfill", "WARNING")
    with one_line_on_missing_extra("python -m pipelines.backfill"):
        sys.exit(run())
