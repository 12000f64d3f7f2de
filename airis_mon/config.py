"""The one YAML config: integrations, aggregation, rules, sinks, routing and enrichment.

::

    integrations:                 # sources, by registered type
      - {name: sample, type: payload_files, paths: [data/*.jsonl.gz]}
    aggregation:
      window_seconds: 60
    rules:                        # transforms, by registered type (default threshold)
      - {name: p95_latency, metric: inference_latency, aggregation: p95,
         comparator: ">", threshold: 250, severity: high}
    sinks:
      - {name: storage, type: parquet, path: ./airis-mon-output}

Everything is validated before the graph is built. Unknown keys, wrong types
and missing fields are errors naming their path (``rules[1].threshold``);
:func:`load_config` reports every problem at once in one
:class:`~airis_mon.errors.ConfigError`. Relative file paths in a config are
relative to the config file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from airis_mon.config_file import parse_yaml, read_document
from airis_mon.durations import Duration
from airis_mon.enrichment import EnrichmentConfig
from airis_mon.errors import ConfigError
from airis_mon.models import ComponentConfig, ConfigPath, StrictModel
from airis_mon.registry import get_component
from airis_mon.routing import DefaultRoute, Route, Silence
from airis_mon.validation import describe_validation_error

__all__ = [
    "SAMPLE_CONFIG_PATH",
    "AggregationConfig",
    "ComponentConfig",
    "Config",
    "LiveConfig",
    "StrictModel",
    "load_config",
    "parse_config",
]

SAMPLE_CONFIG_PATH = Path(__file__).parent / "sample_data" / "sample_config.yaml"


class AggregationConfig(StrictModel):
    """Window aggregation settings."""

    window_seconds: int = Field(default=60, ge=1, le=86_400, description="fixed window length, s")
    allowed_lateness_s: Duration = Field(
        default=900,
        alias="allowed_lateness",
        description="streaming: points this late (event time behind the watermark) still count, s; polled "
        "APIs deliver late (CloudWatch 10-20 min), so keep it above the slowest source's lag",
    )

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)


class LiveConfig(StrictModel):
    """``python -m pipelines.serve``: the continuous runner (cycles, lateness, state, its /metrics).

    ::

        live:
          cycle_interval_s: 5        # a cycle starts this often (s): reads new input, evaluates closed windows
          allowed_lateness: 10s      # a window is evaluated once it ended this long ago (s); later points are
                                     # dead letters. Cover your sources' delay (CloudWatch: 15m).
          state_dir: ./airis-mon-state   # checkpoint, plan, carried points, outbox; default OUTPUT/state
          metrics_host: 127.0.0.1
          metrics_port: 9464         # GET /metrics (Prometheus text); 0: any free port
    """

    cycle_interval_s: float = Field(default=5.0, gt=0, le=3600, description="time between cycle starts, s")
    allowed_lateness_s: Duration = Field(
        default=10,
        alias="allowed_lateness",
        ge=0,
        description="a window is evaluated once its end is this far behind the clock and the input position, s",
    )
    state_dir: ConfigPath | None = Field(default=None, description="the runner's state; default OUTPUT/state")
    metrics_host: str = Field(default="127.0.0.1", description="address of GET /metrics")
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="port of GET /metrics; 0: a free port")
    start_gateway: bool = Field(default=True, description="serve the `type: gateway` integration's API too")

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)


class _RawConfig(StrictModel):
    integrations: list[dict[str, Any]] = Field(default_factory=list)
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig)
    rules: list[dict[str, Any]] = Field(default_factory=list)
    sinks: list[dict[str, Any]] = Field(default_factory=list)
    silences: list[Silence] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    default_route: DefaultRoute = Field(default_factory=DefaultRoute)
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)
    live: dict[str, Any] = Field(default_factory=dict)


class Config(StrictModel):
    """A validated config; component entries are their registered models."""

    integrations: tuple[ComponentConfig, ...]
    aggregation: AggregationConfig
    rules: tuple[ComponentConfig, ...]
    sinks: tuple[ComponentConfig, ...]
    silences: tuple[Silence, ...] = ()
    routes: tuple[Route, ...] = ()
    default_route: DefaultRoute = Field(default_factory=DefaultRoute)
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    base_dir: Path = Field(description="folder that relative paths are resolved against")


_SECTION_KIND = {"integrations": "source", "rules": "transform", "sinks": "sink"}
_DEFAULT_TYPE = {"rules": "threshold"}


def _validate_components(section: str, entries: list[dict[str, Any]], context: dict, problems: list[str]):
    kind = _SECTION_KIND[section]
    typed: list[ComponentConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{section}[{index}]"
        entry = dict(entry)
        entry.setdefault("type", _DEFAULT_TYPE.get(section))
        if not entry["type"]:
            problems.append(f"{where}.type: Field required")
            continue
        try:
            model = get_component(kind, str(entry["type"])).config_model()
        except ConfigError as error:
            problems.append(f"{where}.type: {error.problems[0]}")
            continue
        try:
            component = model.model_validate(entry, context=context)
        except ValidationError as error:
            named = f" ({section[:-1]} {entry['name']!r})" if isinstance(entry.get("name"), str) else ""
            problems.extend(line + named for line in describe_validation_error(error, prefix=where))
            continue
        if component.name in seen:
            problems.append(f"{where}.name: duplicate name {component.name!r} in {section}")
        seen.add(component.name)
        typed.append(component)
    return tuple(typed)


def parse_config(document: Any, base_dir: Path, source: str = "config") -> Config:
    """Validate a decoded YAML document; raise ``ConfigError`` listing every problem.

    Sections are validated independently, so one run reports the problems of
    every section, each with its path.
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(["(root): a config must be a mapping of sections"], source)
    problems = [f"{key}: Extra inputs are not permitted" for key in document if key not in _RawConfig.model_fields]
    try:
        aggregation = AggregationConfig.model_validate(document.get("aggregation") or {})
    except ValidationError as error:
        problems.extend(describe_validation_error(error, prefix="aggregation"))
        aggregation = None
    context = {"base_dir": base_dir}
    try:
        live = LiveConfig.model_validate(document.get("live") or {}, context=context)
    except ValidationError as error:
        problems.extend(describe_validation_error(error, prefix="live"))
        live = None
    sections = {}
    for section in _SECTION_KIND:
        try:
            entries = _RawConfig.model_validate({section: document.get(section) or []})
        except ValidationError as error:
            problems.extend(describe_validation_error(error))
            continue
        sections[section] = _validate_components(section, getattr(entries, section), context, problems)
    routing = {}
    for section, empty in (("silences", []), ("routes", []), ("default_route", {}), ("enrichment", {})):
        try:
            parsed = _RawConfig.model_validate({section: document.get(section) or empty})
        except ValidationError as error:
            problems.extend(describe_validation_error(error))
            continue
        routing[section] = getattr(parsed, section)
    if aggregation is not None:
        problems.extend(_rule_windows_misfit(sections.get("rules", ()), aggregation.window_seconds))
    if "sinks" in sections and "routes" in routing and "default_route" in routing:
        problems.extend(_unknown_route_sinks(sections["sinks"], routing["routes"], routing["default_route"]))
    if "sinks" in sections and "enrichment" in routing:
        problems.extend(_unknown_owner_sinks(sections["sinks"], routing["enrichment"]))
    if problems:
        raise ConfigError(problems, source)
    return Config(
        aggregation=aggregation,
        base_dir=base_dir,
        silences=tuple(routing["silences"]),
        routes=tuple(routing["routes"]),
        default_route=routing["default_route"],
        enrichment=routing["enrichment"],
        live=live,
        **sections,
    )


def _rule_windows_misfit(rules, window_seconds: int) -> list[str]:
    """A rule's own window must be a whole number of aggregation windows."""
    problems = []
    for index, rule in enumerate(rules):
        try:
            rule.window_ms(window_seconds)
        except ValueError as error:
            problems.append(f"rules[{index}].window: {error} (rule {rule.name!r})")
    return problems


def _unknown_route_sinks(sinks, routes, default_route) -> list[str]:
    """Routes may only name configured notification sinks."""
    notifiable = {s.name for s in sinks if get_component("sink", s.type).role == "notify"}
    problems = []
    named = [(f"routes[{i}].sinks[{j}]", name) for i, r in enumerate(routes) for j, name in enumerate(r.sinks)]
    named += [(f"default_route.sinks[{j}]", name) for j, name in enumerate(default_route.sinks)]
    for path, name in named:
        if name not in notifiable:
            known = ", ".join(sorted(notifiable)) or "none configured"
            problems.append(f"{path}: {name!r} is not a notification sink (known: {known})")
    return problems


def _unknown_owner_sinks(sinks, enrichment: EnrichmentConfig) -> list[str]:
    """Ownership entries may only name configured sinks of the right type."""
    types = {s.name: s.type for s in sinks}
    problems = []
    for index, entry in enumerate(enrichment.ownership):
        for field, wanted in (("slack", "slack"), ("pagerduty", "pagerduty")):
            name = getattr(entry, field)
            if name is not None and types.get(name) != wanted:
                known = ", ".join(sorted(n for n, t in types.items() if t == wanted)) or "none configured"
                problems.append(f"enrichment.ownership[{index}].{field}: {name!r} is not a {wanted} sink "
                                f"(known: {known}) (model {entry.model!r})")  # fmt: skip
    return problems


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a YAML config file; ``None`` loads the bundled sample config."""
    if path is not None and "://" in str(path):
        return _load_remote_config(str(path))
    config_path = Path(path) if path is not None else SAMPLE_CONFIG_PATH
    document, base_dir = read_document(config_path)
    return parse_config(document, base_dir, str(config_path))


def _load_remote_config(url: str) -> Config:
    """A config at a URL Beam's file systems read (``gs://`` with ``apache-beam[gcp]``), e.g. for a Dataflow
    template launch; its relative paths resolve against the current folder."""
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(url) as handle:
            text = handle.read().decode("utf-8")
    except Exception as error:  # Beam raises its own IOError subclasses, or ValueError for unknown schemes
        raise ConfigError([f"(file): cannot read {url}: {type(error).__name__}: {error}"], url) from None
    return parse_config(parse_yaml(text, url), Path.cwd(), url)
