"""Log set-up shared by every entry point: ``--log-format {text,json}`` and ``--log-level``.

Text (the default) is ``TIME LEVEL LOGGER: MESSAGE``. JSON is one object a line on stderr::

    {"time": "2026-11-30T12:00:00.123Z", "level": "WARNING", "component": "gateway",
     "logger": "airis_mon.gateway", "integration": "api", "run_id": "3f2a9c01b4de",
     "message": "hand-off failed; answering 503", "error": "Traceback ..."}

- ``component``: the command (``main``, ``backtest``, ``backfill``, ``gateway``, ``serve``, ``launch``);
- ``integration``: when the line is about one: ``extra={"integration": name}`` on the call, else the
  innermost :func:`integration_context` (each poll runs in one), else the process's
  :func:`set_integration` (a gateway process serves one integration); absent otherwise;
- ``run_id``: one per process, 12 hex digits, unless :func:`set_run_id` replaces it or the
  ``AIRIS_MON_RUN_ID`` environment variable gives it (``pipelines.serve`` hands its own to its gateway
  children, so their lines share it);
- ``error``: the formatted exception, when the call logged one.

In JSON mode uncaught exceptions (main thread and threads) and Python warnings are log records too, so
stderr holds nothing but JSON lines. :data:`HARMLESS_BEAM_MESSAGES` lists Beam's chatter that says nothing
about this job; :func:`setup_logging` drops those lines (in both formats), nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone

__all__ = [
    "HARMLESS_BEAM_MESSAGES",
    "LOG_FORMATS",
    "RUN_ID_ENV",
    "TEXT_FORMAT",
    "add_logging_arguments",
    "child_env",
    "child_logging_args",
    "drop_harmless_beam_lines",
    "integration_context",
    "report_failure",
    "run_id",
    "set_integration",
    "set_run_id",
    "setup_logging",
    "setup_logging_from_argv",
]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RUN_ID_ENV = "AIRIS_MON_RUN_ID"

#: Beam log lines that are noise for AIRIS-MON, matched on the start of the formatted message of a record
#: from an ``apache_beam`` logger or the root logger (Beam logs some lines through ``logging.info``). The INFO
#: ones show only at ``--log-level INFO`` (serve, gateway and launch run at INFO by default).
HARMLESS_BEAM_MESSAGES: tuple[str, ...] = (
    # apache_beam.typehints.native_type_compatibility, one line per string annotation of every DoFn and
    # PTransform at each graph construction (~70 for the main job): our modules use
    # `from __future__ import annotations`, so Beam sees strings and treats them as Any. Nothing is lost:
    # the job declares no Beam type hints it relies on.
    "Converting string literal type hint to Any: ",
    # root logger, once per pipeline: Beam says which pickler it uses (cloudpickle, its default). The job
    # sets none; the line is the same every run.
    "Runner defaulting to pickling library: ",
    # apache_beam.runners.worker.statecache, once per in-process pipeline run (each cycle of pipelines.serve):
    # the runner's default state cache size, not a setting of ours.
    "Creating state cache with size ",
    # root logger, WARNING, at `import apache_beam` when the gcp extra is not installed (the core install): Beam
    # imports its BigQuery client unconditionally and says so when apitools is missing. Nothing of ours needs it
    # then: a config with a BigQuery sink is refused with one line naming the gcp extra (airis_mon.extras).
    # Logged at import time, before any handler of ours: :func:`drop_harmless_beam_lines` (called by
    # `pipelines/__init__.py`) filters the root logger itself before Beam is imported.
    "apitools not found, and bigquery client libraries are not available despite the import not raising an "
    "ImportError.",
)


class _BeamNoise(logging.Filter):
    """Drops the records of :data:`HARMLESS_BEAM_MESSAGES` (a handler filter: it sees propagated records)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "root" and not record.name.startswith("apache_beam"):
            return True
        message = record.getMessage()
        return not message.startswith(HARMLESS_BEAM_MESSAGES)


def drop_harmless_beam_lines() -> None:
    """Filter :data:`HARMLESS_BEAM_MESSAGES` out of what is logged on the root logger itself, from now on
    (Beam logs one at import time, before :func:`setup_logging` installs its handler and filter). Idempotent."""
    root = logging.getLogger()
    if not any(isinstance(f, _BeamNoise) for f in root.filters):
        root.addFilter(_BeamNoise())


_integration: contextvars.ContextVar[str | None] = contextvars.ContextVar("airis_mon_integration", default=None)
_process_integration: str | None = None
_run_id: str = os.environ.get(RUN_ID_ENV) or secrets.token_hex(6)
_settings: dict[str, str] = {"format": "text", "level": "WARNING"}


def run_id() -> str:
    """This process's run id (the ``run_id`` of its JSON lines)."""
    return _run_id


def set_run_id(value: str) -> None:
    """Replace the run id of the lines logged from now on (e.g. a job's run key)."""
    global _run_id
    _run_id = str(value)


def set_integration(name: str | None) -> None:
    """The integration of every line of this process without a closer one (a gateway serves one)."""
    global _process_integration
    _process_integration = name


@contextlib.contextmanager
def integration_context(name: str) -> Iterator[None]:
    """Lines logged inside (in this thread or task) carry ``integration: name``."""
    token = _integration.set(name)
    try:
        yield
    finally:
        _integration.reset(token)


def current_integration(record: logging.LogRecord | None = None) -> str | None:
    explicit = getattr(record, "integration", None) if record is not None else None
    return explicit or _integration.get() or _process_integration


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module docstring)."""

    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        line: dict[str, str] = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "component": self.component,
            "logger": record.name,
        }
        integration = current_integration(record)
        if integration:
            line["integration"] = str(integration)
        line["run_id"] = _run_id
        line["message"] = record.getMessage()
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["error"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def add_logging_arguments(parser: argparse.ArgumentParser, default_level: str = "WARNING") -> None:
    """``--log-format`` and ``--log-level`` on ``parser``."""
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default="text",
        help="stderr log lines: text, or json (one object a line: time, level, component, logger, integration, "
             "run_id, message, error). Default: text",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, default=default_level,
        help=f"least severe level logged. Default: {default_level}",
    )  # fmt: skip


def setup_logging(log_format: str = "text", level: str | int = "WARNING", component: str = "airis-mon") -> None:
    """One handler on stderr for the root logger (replacing any), in ``log_format`` at ``level``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    level_name = logging.getLevelName(level) if isinstance(level, int) else str(level).upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component) if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_BeamNoise())  # the handler's filter sees the records of every logger
    drop_harmless_beam_lines()
    logging.basicConfig(level=level_name, handlers=[handler], force=True)
    _settings.update(format=log_format, level=level_name)
    if log_format == "json":
        # Nothing but JSON on stderr: Python warnings and uncaught exceptions become records too.
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread


def setup_logging_from_argv(component: str, default_level: str = "WARNING", argv: Sequence[str] | None = None,
                            prog: str | None = None) -> None:  # fmt: skip
    """:func:`setup_logging` from ``--log-format``/``--log-level`` in ``argv`` (default: the process's),
    leaving every other argument to the command's own parser (which must accept these two too)."""
    prog = prog or f"python -m pipelines.{component}"
    parser = argparse.ArgumentParser(prog=prog, add_help=False, allow_abbrev=False)
    add_logging_arguments(parser, default_level)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    setup_logging(args.log_format, args.log_level, component)


def report_failure(message: object) -> None:
    """Tell the user why a command stops (a config error, a missing extra): the text itself on stderr, or with
    ``--log-format json`` one JSON log line at ERROR, so stderr stays JSON."""
    if _settings["format"] == "json":
        logging.getLogger("airis_mon.cli").error("%s", message)
    else:
        print(message, file=sys.stderr)


def child_logging_args() -> list[str]:
    """The arguments giving a child command this process's log format and level."""
    return ["--log-format", _settings["format"], "--log-level", _settings["level"]]


def child_env() -> dict[str, str]:
    """This process's environment with its run id, for a child whose lines should share it."""
    return {**os.environ, RUN_ID_ENV: _run_id}


def _log_uncaught(kind, value, traceback) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("airis_mon").critical("uncaught exception", exc_info=(kind, value, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("airis_mon").error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )
