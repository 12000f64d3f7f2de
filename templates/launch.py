"""The flex template's entry (``FLEX_TEMPLATE_PYTHON_PY_FILE``): run the main job with the launcher's arguments.

Dataflow's launcher runs this file in the template image as
``python /template/templates/launch.py --config=... --runner=DataflowRunner --project=... --region=...
--temp_location=... --template_location=...``: the template parameters (``templates/metadata.json``)
and the Beam options of the launch. Everything goes to :func:`pipelines.main.run`, which builds the
graph, submits it and returns; this process exits with its code (0 submitted, 2 bad config).

Locally, ``python templates/launch.py --help`` lists the job's options.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from airis_mon.extras import COMMAND_EXTRAS, one_line_on_missing_extra, require
from airis_mon.logs import setup_logging_from_argv
from pipelines.main import run

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the main job with ``argv`` (default: this process's arguments); returns its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not {"-h", "--help"} & set(argv):
        require("python -m templates.launch", *COMMAND_EXTRAS["templates.launch"])  # DataflowRunner needs it
    # INFO: the launcher's log (Dataflow console, "launcher" logs) then shows Beam's submission steps.
    # (--log-format json: one JSON object a line; Beam's string type hint lines are dropped, see airis_mon.logs)
    setup_logging_from_argv("launch", "INFO", argv, prog="python -m templates.launch")
    return run(argv)


if __name__ == "__main__":
    with one_line_on_missing_extra("python -m templates.launch"):
        sys.exit(main())
