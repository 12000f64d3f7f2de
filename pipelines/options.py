"""The main job's own pipeline options (Beam ``PipelineOptions``): the one parser for the command line,
the Dataflow flex template's parameters (``templates/metadata.json``) and the launcher.

    python -m pipelines.main --config airis-mon.yaml --output ./out --num_shards 16 --runner DirectRunner

Every option here must have a parameter in ``templates/metadata.json`` (a test checks both ways).
Beam's own options (``--runner``, ``--streaming``, ``--project`` ...) are Beam's.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["DEFAULT_OUTPUT", "AirisMonOptions"]

DEFAULT_OUTPUT = "./airis-mon-output"


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
