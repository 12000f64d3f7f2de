"""The main job's own pipeline options (Beam ``PipelineOptions``): the one parser for the command line,
the Dataflow flex template's parameters (``templates/metadata.json``) and the launcher.

    python -m pipelines.main --config airis-mon.yaml --output ./out --num_shards 16 --runner DirectRunner

Every option here must have a parameter in ``templates/metadata.json`` (a test checks both ways).
Beam's own options (``--runner``, ``--streaming``, ``--project`` ...) are Beam's.
"""

from __future__ import annotations

from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

__all__ = ["DEFAULT_OUTPUT", "AirisMonOptions", "beam_options"]

DEFAULT_OUTPUT = "./airis-mon-output"


def beam_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Beam's options for a run; a batch run on the local ``DirectRunner`` (or no runner) goes to the FnApiRunner.

    Beam 2.77's ``DirectRunner`` first tries its Prism runner, a Go binary it downloads from github.com at
    run time, and falls back to the in-process FnApiRunner when that fails (always, offline). For a batch
    run the FnApiRunner is the better local runner anyway (it runs in this process, so the progress line
    sees the counts, and it is what the benchmarks measure), so batch runs go there directly: no network
    lookup, no fallback. ``--runner PrismRunner`` still asks for Prism; streaming runs keep Beam's choice.
    """
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if standard.runner in (None, "DirectRunner") and not standard.streaming:
        standard.runner = "FnApiRunner"
    return options


class AirisMonOptions(PipelineOptions):
    """``--config``, ``--output``, ``--num_shards``."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument(
            "--config",
            default=None,
            help="YAML config file (integrations, aggregation, rules, sinks, routes, enrichment): a local path "
            "or a gs:// URL. Default: the bundled sample config, which reads the bundled sample day",
        )
        parser.add_argument(
            "--output",
            default=DEFAULT_OUTPUT,
            help=f"folder for Parquet storage sinks that set no path of their own. Default: {DEFAULT_OUTPUT}",
        )
        parser.add_argument(
            "--num_shards",
            "--num-shards",
            dest="num_shards",
            type=int,
            default=16,
            help="series shards for window aggregation (parallelism of the aggregate step). Default: 16",
        )
