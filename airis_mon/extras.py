"""Which pip extra provides which optional library, and the one-line answer when one is missing.

``pip install -e .`` installs the core: enough to run the main job on the
bundled sample, backtests and ``--validate``. Each integration family is an
extra (``setup.py``'s ``EXTRAS``). A command or a configured component that
needs a missing extra stops with one line naming it, never a traceback::

    >>> install_hint(["gateway", "prometheus"])
    'pip install -e ".[gateway,prometheus]"'
    >>> extra_of_module("google.cloud.monitoring_v3")
    'gcp'

Entry points call :func:`require` after parsing their arguments (so
``--help`` works from the core install) and run under
:func:`one_line_on_missing_extra`, which turns an import of an optional
library that fails later (a configured source's client, say) into the same
one line.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = [
    "COMMAND_EXTRAS",
    "EXTRA_MODULES",
    "MissingExtraError",
    "exit_if_missing",
    "extra_of_module",
    "install_hint",
    "missing_extras",
    "one_line_on_missing_extra",
    "require",
]

#: The import names each extra provides (the distributions are listed in ``setup.py``).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "gcp": (
        "google.cloud.monitoring_v3",
        "google.cloud.aiplatform",
        "google.cloud.secretmanager",
        "google.cloud.bigquery",
        "apitools",
    ),
    "aws": ("boto3", "botocore"),
    "mlflow": ("mlflow",),
    "kubeflow": ("kfp",),
    "tfserving": ("tensorflow_serving", "prometheus_client"),  # grpcio comes with apache-beam
    "prometheus": ("prometheus_client",),
    "ldap": ("ldap3",),
    "github": ("github",),
    "gateway": ("fastapi", "uvicorn", "httptools", "uvloop", "orjson", "msgspec"),
    "console": ("fastapi", "uvicorn", "duckdb", "strawberry", "multipart"),
}

#: The extras each entry point (``python -m NAME``) needs whatever its config; configured components may need
#: more (their registry ``extra``). The README's install line next to each command names at least these.
COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "pipelines.main": (),
    "pipelines.backtest": (),
    "pipelines.backfill": ("aws",),
    "pipelines.gateway": ("gateway",),
    "pipelines.serve": ("prometheus",),  # and "gateway" when it starts a configured gateway
    "pipelines.console": ("console",),
    "pipelines.silence": (),  # requests only (the API it talks to is the gateway's)
    "pipelines.rules": (),  # the Prometheus rule importer: core install
    "templates.make_metadata": (),
    "templates.launch": ("gcp",),
    "benchmarks.aggregate": (),
    "benchmarks.rules": (),
    "benchmarks.monitors": (),
    "benchmarks.backfill": ("aws",),
    "benchmarks.gateway": ("gateway",),
    "benchmarks.live": ("gateway", "prometheus"),
    "benchmarks.console": ("console",),
}

#: Exit status of a command stopped for a missing extra (argparse uses 2 for usage errors).
EXIT_MISSING_EXTRA = 3


class MissingExtraError(Exception):
    """A command or component needs extras that are not installed; ``str()`` is the one line to print."""

    def __init__(self, what: str, extras: Iterable[str]):
        self.extras = sorted(set(extras))
        names = ", ".join(f"'{extra}'" for extra in self.extras)
        plural = "s" if len(self.extras) > 1 else ""
        super().__init__(f"{what} needs the {names} extra{plural}: {install_hint(self.extras)}")


def install_hint(extras: Iterable[str]) -> str:
    """The pip command that installs ``extras`` into this checkout."""
    return f'pip install -e ".[{",".join(sorted(set(extras)))}]"'


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package raises ModuleNotFoundError
        return False


def missing_extras(extras: Iterable[str]) -> list[str]:
    """The extras of ``extras`` that are not (fully) installed, sorted."""
    return sorted({extra for extra in extras if not all(_importable(m) for m in EXTRA_MODULES[extra])})


def extra_of_module(module: str | None) -> str | None:
    """The extra that provides ``module`` (or a package it belongs to); ``None`` for core or unknown modules."""
    if not module:
        return None
    for extra, modules in EXTRA_MODULES.items():
        for provided in modules:
            if module == provided or module.startswith(provided + ".") or provided.startswith(module + "."):
                return extra
    return None


def require(what: str, *extras: str) -> None:
    """Raise :class:`MissingExtraError` when any of ``extras`` is missing (``what`` names the command)."""
    missing = missing_extras(extras)
    if missing:
        raise MissingExtraError(what, missing)


def exit_if_missing(command: str, *extras: str) -> None:
    """For a script whose own imports need ``extras``: print the one line and exit 3 when one is missing."""
    with one_line_on_missing_extra(command):
        require(command, *extras)


@contextmanager
def one_line_on_missing_extra(command: str) -> Iterator[None]:
    """Run an entry point's body: a missing extra prints one line on stderr and exits 3; anything else raises."""
    try:
        yield
    except MissingExtraError as error:
        from airis_mon.logs import report_failure

        report_failure(error)
        raise SystemExit(EXIT_MISSING_EXTRA) from None
    except ModuleNotFoundError as error:
        extra = extra_of_module(error.name)
        if extra is None:
            raise
        from airis_mon.logs import report_failure

        report_failure(MissingExtraError(f"{command} (importing {error.name})", [extra]))
        raise SystemExit(EXIT_MISSING_EXTRA) from None
