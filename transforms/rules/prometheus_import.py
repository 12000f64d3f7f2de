"""Prometheus alerting rules -> AIRIS-MON ``type: prometheus`` rules, or a refusal naming the part.

:func:`import_rules` takes a parsed Prometheus rules file (``groups: [{name, rules: [...]}]``) and gives
the AIRIS-MON rule dicts and the refusals. A rule maps when it is an alerting rule whose ``expr`` is in the
subset of :mod:`transforms.rules.promql`. ``labels.severity`` becomes the rule's severity (Prometheus's
``warning``/``critical``/...; unknown values and no severity: ``warning``, the label kept); other labels
stay labels. Annotations ``summary`` and ``description`` become templates: ``{{ $value }}`` ->
``{value}``, ``{{ $labels.x }}`` / ``{{ .Labels.x }}`` -> ``{labels[x]}``, ``{{ $value | humanize }}`` ->
``{value:.4g}``; other text is kept literally (braces escaped); a template with any other ``{{ ... }}``
action is refused (the rule is refused, naming the annotation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

from airis_mon.schema import ALERT_SEVERITIES
from transforms.rules.config import PrometheusRule

__all__ = ["Refusal", "convert_template", "import_rules"]


class Refusal(NamedTuple):
    """A rule that was not imported: its group, name (alert or record) and why."""

    group: str
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"refused {self.group}/{self.rule}: {self.reason}"


def _action(text: str) -> str:
    inner = text.strip()
    if inner.startswith("-"):
        inner = inner[1:].strip()
    if inner.endswith("-"):
        inner = inner[:-1].strip()
    words = inner.replace("|", " | ").split()
    if words == ["$value"]:
        return "{value}"
    if words == ["$value", "|", "humanize"]:
        return "{value:.4g}"
    if len(words) == 1 and words[0].startswith(("$labels.", ".Labels.")):
        label = words[0].split(".", 2)[-1] if words[0].startswith(".") else words[0].split(".", 1)[1]
        if label.replace("_", "a").isalnum():
            return "{labels[" + label + "]}"
    raise ValueError(f"template action {{{{{text}}}}} is not supported")


def convert_template(template: str) -> str:
    """A Prometheus (Go) annotation template -> an AIRIS-MON ``str.format`` template; ``ValueError`` on an
    action other than ``$value``, ``$value | humanize`` and ``$labels.x``."""
    out, i = [], 0
    while True:
        start = template.find("{{", i)
        if start < 0:
            out.append(template[i:].replace("{", "{{").replace("}", "}}"))
            return "".join(out)
        end = template.find("}}", start + 2)
        if end < 0:
            raise ValueError("unterminated {{ in template")
        out.append(template[i:start].replace("{", "{{").replace("}", "}}"))
        out.append(_action(template[start + 2 : end]))
        i = end + 2


def _one(rule: Mapping[str, Any]) -> dict[str, Any]:
    if "alert" not in rule:
        raise ValueError("recording rules are not imported (only alerting rules)")
    unknown = set(rule) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
    if unknown:
        raise ValueError(f"unsupported fields {sorted(unknown)}")
    labels = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
    severity = labels.get("severity", "warning")
    if severity in ALERT_SEVERITIES:
        labels.pop("severity", None)
    else:
        severity = "warning"
    out: dict[str, Any] = {"name": rule["alert"], "type": "prometheus", "expr": str(rule["expr"]).strip(),
                           "severity": severity}  # fmt: skip
    for key in ("for", "keep_firing_for"):
        if key in rule:
            out[key] = rule[key]
    if labels:
        out["labels"] = labels
    annotations = rule.get("annotations") or {}
    for key in ("summary", "description"):
        if key in annotations:
            try:
                out[key] = convert_template(str(annotations[key]))
            except ValueError as error:
                raise ValueError(f"annotation {key}: {error}") from None
    other = set(annotations) - {"summary", "description"}
    if other:
        out.setdefault("labels", {}).update({f"annotation_{k}": str(annotations[k]) for k in sorted(other)})
    try:
        PrometheusRule.model_validate(out)
    except ValidationError as error:
        raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())) from None
    return out


def import_rules(document: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[Refusal]]:
    """A parsed Prometheus rules file -> (AIRIS-MON rule dicts, refusals), in file order."""
    rules, refusals = [], []
    groups = document.get("groups") if isinstance(document, Mapping) else None
    if not isinstance(groups, list):
        return [], [Refusal("-", "-", "not a Prometheus rules file (no 'groups' list)")]
    for group in groups:
        group_name = str(group.get("name", "?"))
        for rule in group.get("rules") or []:
            name = str(rule.get("alert") or rule.get("record") or "?")
            try:
                rules.append(_one(rule))
            except ValueError as error:
                refusals.append(Refusal(group_name, name, str(error)))
    return rules, refusals
