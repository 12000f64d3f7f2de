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

import functools
import inspect
import logging
import re
import types
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from airis_mon.config_file import parse_yaml, read_document
from airis_mon.console_config import ConsoleConfig
from airis_mon.durations import Duration
from airis_mon.enrichment import EnrichmentConfig, Ownership
from airis_mon.errors import ConfigError
from airis_mon.extras import install_hint, missing_extras
from airis_mon.models import ComponentConfig, ConfigPath, StrictModel
from airis_mon.registry import get_component, known_types
from airis_mon.routing import DefaultRoute, Route, Silence
from airis_mon.validation import describe_validation_error, without_inputs
from transforms.notify_policy.config import NotificationPolicy, policy_from_document

__all__ = [
    "SAMPLE_CONFIG_PATH",
    "AggregationConfig",
    "ComponentConfig",
    "Config",
    "LiveConfig",
    "StrictModel",
    "config_warnings",
    "load_config",
    "parse_config",
    "storage_output_problems",
    "warn_about",
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
    distributions: list[str] = Field(
        default_factory=list,
        description="metrics that keep a distribution (DDSketch) per series and window besides the ones drift "
        "rules read (those always do)",
    )
    relative_accuracy: float = Field(
        default=0.01, gt=0, lt=1, description="the distributions' relative accuracy: quantiles within this ratio"
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
    start_console: bool = Field(default=True, description="serve the console too, when there is a console: section")

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)


class _RawConfig(StrictModel):
    integrations: list[dict[str, Any]] = Field(default_factory=list)
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig)
    rules: list[dict[str, Any]] = Field(default_factory=list)
    sinks: list[dict[str, Any]] = Field(default_factory=list)
    silences: list[Silence] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    default_route: DefaultRoute = Field(default_factory=DefaultRoute)
    notification_policy: dict[str, Any] | None = None
    inhibit_rules: list[dict[str, Any]] = Field(default_factory=list)
    time_intervals: list[dict[str, Any]] = Field(default_factory=list)
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)
    live: dict[str, Any] = Field(default_factory=dict)
    console: dict[str, Any] | None = None


class Config(StrictModel):
    """A validated config; component entries are their registered models."""

    integrations: tuple[ComponentConfig, ...]
    aggregation: AggregationConfig
    rules: tuple[ComponentConfig, ...]
    sinks: tuple[ComponentConfig, ...]
    silences: tuple[Silence, ...] = ()
    routes: tuple[Route, ...] = ()
    default_route: DefaultRoute = Field(default_factory=DefaultRoute)
    notification_policy: NotificationPolicy | None = None  # with inhibit_rules, time_intervals; replaces routes
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    console: ConsoleConfig | None = None  # the web console (python -m pipelines.console)
    base_dir: Path = Field(description="folder that relative paths are resolved against")


_SECTION_KIND = {"integrations": "source", "rules": "transform", "sinks": "sink"}
_DEFAULT_TYPE = {"rules": "threshold"}
#: A name that may be shown in messages (it passed the pattern of :class:`ComponentConfig` names).
_SHOWABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def _label(section: str, entry: Any) -> str:
    """`` (rule 'r1')``: the entry's name, when it is one that may be shown; else nothing."""
    name = entry.get("name") if isinstance(entry, dict) else None
    if isinstance(name, str) and _SHOWABLE_NAME.fullmatch(name):
        return f" ({section[:-1]} {name!r})"
    return ""


class _UnknownFieldError(Exception):
    """A model rule read a field whose value did not validate: the rule cannot be checked."""


class _Partial:
    """The validated fields of an entry that failed validation, as attributes; reading a field that failed
    (or is missing) raises :class:`_UnknownFieldError`. Properties and methods of ``model`` work on it, so that its
    ``mode="after"`` model validators (which pydantic skips when any field failed) and other rules (a rule's
    ``window_ms``) can still be checked on the fields they read."""

    def __init__(self, model: type, values: dict[str, Any], unknown: set[str], fields_set: set[str]):
        self.__dict__.update(_p_model=model, _p_values=values, _p_unknown=unknown, _p_fields_set=fields_set)

    def __getattr__(self, name: str) -> Any:
        values, model = self.__dict__["_p_values"], self.__dict__["_p_model"]
        if name in values:
            return values[name]
        if name in self.__dict__["_p_unknown"]:
            raise _UnknownFieldError(name)
        if name == "model_fields_set":
            return self.__dict__["_p_fields_set"]
        attribute = inspect.getattr_static(model, name)
        if isinstance(attribute, property):
            return attribute.fget(self)
        if isinstance(attribute, functools.cached_property):
            return attribute.func(self)
        if inspect.isfunction(attribute):
            return types.MethodType(attribute, self)
        return getattr(model, name)


@functools.cache
def _field_adapter(model: type, name: str) -> TypeAdapter:
    info = model.model_fields[name]
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)


def _partial(model: type, data: dict, error: ValidationError, context: dict) -> _Partial:
    """The fields of ``data`` that validate on their own (``model``'s field validators aside) as a
    :class:`_Partial`; the fields ``error`` names, and missing required ones, are unknown."""
    keys = {name: (info.alias or name) for name, info in model.model_fields.items()}
    failed = {d["loc"][0] for d in error.errors(include_url=False, include_input=False) if d["loc"]}
    values: dict[str, Any] = {}
    unknown: set[str] = set()
    for name, key in keys.items():
        present = key if key in data else name if name in data else None
        if key in failed or name in failed:
            unknown.add(name)
        elif present is None:
            info = model.model_fields[name]
            if info.is_required():
                unknown.add(name)
            else:
                values[name] = info.get_default(call_default_factory=True)
        else:
            try:
                values[name] = _field_adapter(model, name).validate_python(data[present], context=context)
            except Exception:  # anything that does not validate alone is unknown
                unknown.add(name)
    fields_set = {name for name, key in keys.items() if key in data or name in data}
    return _Partial(model, values, unknown, fields_set)


def _model_rule_problems(model: type, partial: _Partial, where: str, data: dict) -> list[str]:
    """The problems of ``model``'s ``mode="after"`` model validators, each run on its own on ``partial``
    (pydantic stops at the first that fails, and runs none when a field failed); a validator that reads an
    unknown field is skipped: it can only be checked once that field is right."""
    problems = []
    for decorator in model.__pydantic_decorators__.model_validators.values():
        if decorator.info.mode != "after" or len(inspect.signature(decorator.func).parameters) != 1:
            continue
        try:
            decorator.func(partial)
        except (ValueError, AssertionError) as error:
            problems.append(f"{where or '(root)'}: Value error, {without_inputs(str(error), data)}")
        except Exception:  # _UnknownFieldError, or a rule that needs what a partial entry cannot give
            continue
    return problems


def _validate(model: type, data: Any, where: str, context: dict, problems: list[str], label: str = ""):
    """``data`` validated by ``model``, or a :class:`_Partial` of it (``None`` when it is not a mapping) after
    adding to ``problems`` every problem found: its field errors and the model rules that could be checked."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        found = describe_validation_error(error, prefix=where)
        partial = None
        if isinstance(data, dict):
            partial = _partial(model, data, error, context)
            found += [line for line in _model_rule_problems(model, partial, where, data) if line not in found]
        problems.extend(line + label for line in found)
        return partial


def _validate_list(model: type, section: str, document: dict, context: dict, problems: list[str]):
    """``(index, entry)`` of the entries of list ``section`` that validate, each validated on its own (so
    that one bad entry hides nothing of the others); ``None`` when the section is not a list."""
    entries = document.get(section) or []
    if not isinstance(entries, list):
        problems.append(f"{section}: Input should be a valid list")
        return None
    validated = []
    for index, entry in enumerate(entries):
        value = _validate(model, entry, f"{section}[{index}]", context, problems)
        if isinstance(value, model):
            validated.append((index, value))
    return validated


class _Section:
    """One component section: its valid entries, the partial ones, and the names of the entries that
    failed (their role is unknown, so references to them are not reported)."""

    def __init__(self):
        self.typed: list[ComponentConfig] = []
        self.checkable: list[tuple[int, ComponentConfig | _Partial]] = []  # valid and partial, by index
        self.failed_names: set[str] = set()


def _validate_components(section: str, entries: list[dict[str, Any]], context: dict, problems: list[str]):
    kind = _SECTION_KIND[section]
    result = _Section()
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{section}[{index}]"
        entry = dict(entry)
        entry.setdefault("type", _DEFAULT_TYPE.get(section))
        label = _label(section, entry)
        name = entry.get("name")
        if isinstance(name, str):
            result.failed_names.add(name)  # until it validates
            if name in seen:  # whether or not the entries validate
                shown = f" {name!r}" if label else ""
                problems.append(f"{where}.name: duplicate name{shown} in {section}")
            seen.add(name)
        if not entry["type"]:
            problems.append(f"{where}.type: Field required{label}")
            continue
        try:
            registered = get_component(kind, str(entry["type"]))
        except ConfigError:
            problems.append(f"{where}.type: unknown {kind} type (known: {', '.join(known_types(kind))}){label}")
            continue
        if registered.extra and missing_extras([registered.extra]):
            problems.append(f"{where}.type: {registered.type_name!r} needs the {registered.extra!r} extra: "
                            f"{install_hint([registered.extra])}{label}")  # fmt: skip
            continue  # its validators may import the missing library
        model = registered.config_model()
        component = _validate(model, entry, where, context, problems, label)
        if component is not None:
            result.checkable.append((index, component))
        if not isinstance(component, model):
            continue
        result.failed_names.discard(component.name)
        result.typed.append(component)
    return result


def parse_config(document: Any, base_dir: Path, source: str = "config", output: str | None = None) -> Config:
    """Validate a decoded YAML document; raise ``ConfigError`` listing every problem.

    Every section, every entry and every cross-section check is validated
    whatever else failed, so one run reports every problem, each with its
    path (a check that needs a field that failed waits for that field).
    ``output``: the job's ``--output``, checked against the storage sinks
    (:func:`storage_output_problems`).
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(["(root): a config must be a mapping of sections"], source)
    problems = [f"{key}: Extra inputs are not permitted" for key in document if key not in _RawConfig.model_fields]
    context = {"base_dir": base_dir}
    aggregation = _validate(AggregationConfig, document.get("aggregation") or {}, "aggregation", context, problems)
    live = _validate(LiveConfig, document.get("live") or {}, "live", context, problems)
    console = None
    if document.get("console") is not None:
        console = _validate(ConsoleConfig, document["console"], "console", context, problems)
    sections: dict[str, _Section] = {}
    for section in _SECTION_KIND:
        entries = document.get(section) or []
        if not isinstance(entries, list):
            problems.append(f"{section}: Input should be a valid list")
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                problems.append(f"{section}[{index}]: Input should be a valid dictionary")
        entries = [entry for entry in entries if isinstance(entry, dict)]
        sections[section] = _validate_components(section, entries, context, problems)
    silences = _validate_list(Silence, "silences", document, context, problems)
    routes = _validate_list(Route, "routes", document, context, problems)
    default_route = _validate(DefaultRoute, document.get("default_route") or {}, "default_route", context, problems)
    enrichment = _validate(EnrichmentConfig, document.get("enrichment") or {}, "enrichment", context, problems)
    window_seconds = _known(aggregation, "window_seconds")
    if window_seconds is not None and "rules" in sections:
        problems.extend(_rule_windows_misfit(sections["rules"], window_seconds))
    policy = None
    if "sinks" in sections:
        sinks = sections["sinks"]
        if routes is not None:
            problems.extend(_unknown_route_sinks(sinks, "routes", routes))
        if isinstance(default_route, DefaultRoute):
            problems.extend(_unknown_route_sinks(sinks, "default_route", default_route))
        ownership = _ownership(document.get("enrichment"), enrichment, context)
        notifiable = {s.name for s in sinks.typed if get_component("sink", s.type).role == "notify"}
        policy, policy_problems = policy_from_document(document, notifiable, sinks.failed_names)
        problems.extend(policy_problems)
        problems.extend(_unknown_owner_sinks(sinks, ownership))
        if output is not None:
            problems.extend(_storage_output_problems(sinks, output))
    if problems:
        raise ConfigError(problems, source)
    if console is not None and "sinks" in sections:
        sections["sinks"].typed = [_linked_to_console(sink, console) for sink in sections["sinks"].typed]
    return Config(
        aggregation=aggregation,
        base_dir=base_dir,
        silences=tuple(silence for _, silence in silences),
        routes=tuple(route for _, route in routes),
        default_route=default_route,
        notification_policy=policy,
        enrichment=enrichment,
        live=live,
        console=console,
        **{section: tuple(parsed.typed) for section, parsed in sections.items()},
    )


def _linked_to_console(sink: ComponentConfig, console: ConsoleConfig) -> ComponentConfig:
    """A chat or paging sink without a ``dashboard_url`` links to the console's alert page, the spec's
    ``{airis_mon_url}/dashboard?alert={id}`` (a configured template is kept)."""
    if "dashboard_url" not in type(sink).model_fields or getattr(sink, "dashboard_url", None):
        return sink
    return sink.model_copy(update={"dashboard_url": f"{console.public_url}/dashboard?alert={{alert_id}}"})


def _ownership(raw: Any, enrichment: Any, context: dict) -> list[tuple[int, Any]]:
    """``(index, entry)`` of the ownership entries that validate (each on its own when the section failed)."""
    if isinstance(enrichment, EnrichmentConfig):
        return list(enumerate(enrichment.ownership))
    entries = raw.get("ownership") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        return []
    valid = []
    for index, entry in enumerate(entries):
        try:
            valid.append((index, Ownership.model_validate(entry, context=context)))
        except ValidationError:
            continue  # reported with the enrichment section
    return valid


def _known(value: Any, name: str) -> Any:
    """Field ``name`` of a validated or partial ``value``; ``None`` when it is unknown."""
    try:
        return None if value is None else getattr(value, name)
    except _UnknownFieldError:
        return None


def _rule_windows_misfit(rules: _Section, window_seconds: int) -> list[str]:
    """A rule's own window must be a whole number of aggregation windows (checked on partial rules too,
    when their window validated)."""
    problems = []
    for index, rule in rules.checkable:
        name = _known(rule, "name")
        label = f" (rule {name!r})" if isinstance(name, str) and _SHOWABLE_NAME.fullmatch(name) else ""
        try:
            rule.window_ms(window_seconds)
        except ValueError:
            problems.append(f"rules[{index}].window: must be a whole multiple of aggregation.window_seconds{label}")
        except Exception:  # a partial rule whose window did not validate: checked once it does
            continue
    return problems


def _unknown_route_sinks(sinks: _Section, section: str, routes) -> list[str]:
    """Routes may only name configured notification sinks (a sink entry that failed validation may be one)."""
    notifiable = {s.name for s in sinks.typed if get_component("sink", s.type).role == "notify"}
    if section == "routes":
        named = [(f"routes[{i}].sinks[{j}]", name) for i, r in routes for j, name in enumerate(r.sinks)]
    else:
        named = [(f"default_route.sinks[{j}]", name) for j, name in enumerate(routes.sinks)]
    problems = []
    for path, name in named:
        if name not in notifiable and name not in sinks.failed_names:
            known = ", ".join(sorted(notifiable)) or "none configured"
            problems.append(f"{path}: names no notification sink (known: {known})")
    return problems


def _unknown_owner_sinks(sinks: _Section, ownership: list[tuple[int, Any]]) -> list[str]:
    """Ownership entries may only name configured sinks of the right type."""
    types = {s.name: s.type for s in sinks.typed}
    problems = []
    for index, entry in ownership:
        for field, wanted in (("slack", "slack"), ("pagerduty", "pagerduty")):
            name = getattr(entry, field)
            if name is not None and types.get(name) != wanted and name not in sinks.failed_names:
                known = ", ".join(sorted(n for n, t in types.items() if t == wanted)) or "none configured"
                problems.append(f"enrichment.ownership[{index}].{field}: names no {wanted} sink (known: {known})")
    return problems


def _storage_output_problems(sinks: _Section, output: str) -> list[str]:
    storage = [s for s in sinks.typed if get_component("sink", s.type).role == "storage"]
    if not storage and sinks.failed_names:
        return []  # a storage sink may have failed validation
    if not storage:
        storage = [None]  # the default: Parquet under --output
    local = [s for s in storage if s is None or (s.type == "parquet" and not getattr(s, "path", None))]
    if local and "://" in output:
        return [f"sinks: Parquet storage writes local files, not {output}; on Dataflow configure a "
                "`type: bigquery` storage sink (or give the parquet sink a path)"]  # fmt: skip
    return []


def storage_output_problems(config: Config, output: str) -> list[str]:
    """Why the storage sinks of ``config`` cannot write to the job's ``--output`` (a URL for a Parquet sink
    without a path, which writes local files), or nothing."""
    section = _Section()
    section.typed = list(config.sinks)
    return _storage_output_problems(section, output)


def load_config(path: str | Path | None = None, output: str | None = None) -> Config:
    """Load and validate a YAML config file; ``None`` loads the bundled sample config.

    ``output``: the job's ``--output``; when given, its storage problems
    (:func:`storage_output_problems`) are reported with the config's, in one
    :class:`ConfigError`.
    """
    if path is not None and "://" in str(path):
        return _load_remote_config(str(path), output)
    config_path = Path(path) if path is not None else SAMPLE_CONFIG_PATH
    document, base_dir = read_document(config_path)
    return parse_config(document, base_dir, str(config_path), output)


def _load_remote_config(url: str, output: str | None = None) -> Config:
    """A config at a URL Beam's file systems read (``gs://`` with ``apache-beam[gcp]``), e.g. for a Dataflow
    template launch; its relative paths resolve against the current folder."""
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(url) as handle:
            text = handle.read().decode("utf-8")
    except Exception as error:  # Beam raises its own IOError subclasses, or ValueError for unknown schemes
        raise ConfigError([f"(file): cannot read {url}: {type(error).__name__}: {error}"], url) from None
    return parse_config(parse_yaml(text, url), Path.cwd(), url, output)


#: Where :func:`warn_about` logs.
LOG = logging.getLogger("airis_mon.config")


def config_warnings(config: Config) -> list[str]:
    """What a valid ``config`` leaves out that makes its run do little or nothing, one ``section: ...``
    line each (``--validate`` prints them; :func:`warn_about` logs them)."""
    warnings = []
    if not config.integrations:
        warnings.append(
            "integrations: none configured: the run reads nothing; add one (see examples/integrations.yaml)"
        )
    if not config.rules:
        warnings.append("rules: none configured: nothing will alert; add one (see the rules of the bundled "
                        "sample config, airis_mon/sample_data/sample_config.yaml)")  # fmt: skip
    notify = [s for s in config.sinks if get_component("sink", s.type).role == "notify"]
    if config.rules and not notify:
        warnings.append("sinks: no notification sink: alerts are stored but nobody is notified; add one (slack, "
                        "pagerduty, email, notification_log ...) and route to it (routes, default_route)")  # fmt: skip
    elif config.rules and not config.routes and not config.default_route.sinks and not _owner_sinks(config) and (
            config.notification_policy is None):  # fmt: skip
        warnings.append("routes: none configured and default_route.sinks is empty: alerts are stored but no "
                        "notification sink receives them; add a route or default_route: {sinks: [NAME]}")  # fmt: skip
    return warnings


def _owner_sinks(config: Config) -> bool:
    return any(entry.slack or entry.pagerduty for entry in config.enrichment.ownership)


def warn_about(config: Config) -> list[str]:
    """Log :func:`config_warnings` of ``config`` (logger ``airis_mon.config``, WARNING); return them."""
    warnings = config_warnings(config)
    for warning in warnings:
        LOG.warning("config: %s", warning)
    return warnings
