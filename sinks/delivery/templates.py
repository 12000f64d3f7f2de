"""Notification text from sandboxed Jinja2 templates (the ``templates:`` mapping of the chat and paging sinks).

::

    sinks:
      - name: ml-alerts
        type: slack
        webhook_url: {env: SLACK_WEBHOOK_URL}
        templates:                 # every key optional; the defaults are the built-in layouts
          header: "{{ severity | upper }} {{ name }} on {{ model_id }}"
          body: "{{ description }} (since {{ format_utc(starts_at_ms) }})"

Templates render in :class:`jinja2.sandbox.SandboxedEnvironment` with ``StrictUndefined`` (an unknown variable
is an error) and without autoescaping: each sink escapes and cuts the rendered text as it does its built-in
text (Slack mrkdwn escaping and Block Kit limits, the PagerDuty 1,024-character summary). Unsafe attribute
access (``{{ ''.__class__ }}``) is refused by the sandbox.

Variables (:func:`template_values`): every :class:`~airis_mon.schema.Alert` field (``id, name, severity,
summary, description, timestamp_ms, source, model_id, environment, alert_type, threshold, current_value,
peak_value, duration_s, status, notification, starts_at_ms, resolved_at_ms, rule, metric, silenced``; times
in epoch ms, ``duration_s`` in s), ``labels`` and ``group`` (dicts), ``context`` (the enrichment dict),
``changed`` and ``owner`` (the lines :mod:`sinks.delivery.context` makes, or ``""``), and the helpers
``format_utc(ms)``, ``format_duration(s)``, ``format_value(x)`` of :mod:`sinks.delivery.links`.

A template is compiled and rendered against a sample alert of each notification kind (trigger, repeat,
resolve) when the config loads (:func:`check_template`): a syntax error, an unknown variable or a sandbox
violation is a config error naming the field, never a failed delivery.
"""

from __future__ import annotations

import functools
import json

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from airis_mon.schema import Alert
from sinks.delivery.context import context_of, owner_line, what_changed
from sinks.delivery.links import format_duration, format_utc, format_value

__all__ = ["TEMPLATE_VARIABLES", "check_template", "render_template", "sample_alerts", "template_values"]

_ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
#: The names a template may use besides the Alert fields.
TEMPLATE_VARIABLES = ("labels", "group", "context", "changed", "owner", "format_utc", "format_duration",
                      "format_value")  # fmt: skip


@functools.lru_cache(maxsize=256)
def _compiled(source: str):
    return _ENVIRONMENT.from_string(source)


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def template_values(alert: Alert) -> dict[str, object]:
    """The variables of a template rendered for ``alert`` (see the module docstring)."""
    values: dict[str, object] = dict(alert._asdict())
    values.update(
        labels=_json_dict(alert.labels),
        group=_json_dict(alert.group),
        context=context_of(alert),
        changed=what_changed(alert),
        owner=owner_line(alert),
        format_utc=format_utc,
        format_duration=format_duration,
        format_value=format_value,
    )
    return values


def render_template(source: str, alert: Alert) -> str:
    """``source`` rendered for ``alert`` (checked at config load, so it does not fail on a real alert's
    fields; an error here propagates)."""
    return _compiled(source).render(template_values(alert))


def sample_alerts() -> list[Alert]:
    """One alert of each notification kind (trigger, repeat, resolve), with labels, group and context."""
    base = Alert(
        id="0123456789abcdef01234567", name="latency", severity="critical", summary="latency: m p95 11 > 10",
        description="latency: m p95 11 > 10 for 3m", timestamp_ms=1_796_000_060_000, source="prometheus",
        model_id="fraud", environment="prod", alert_type="threshold", threshold=10.0, current_value=11.0,
        peak_value=12.0, duration_s=60.0, status="firing", notification="trigger", starts_at_ms=1_796_000_000_000,
        resolved_at_ms=0, rule="latency", metric="m", group='{"model_name":"fraud"}',
        labels='{"model_name":"fraud","team":"risk"}', silenced=False,
        context='{"team":"risk","owner":"jdoe","change":"deploy v42"}',
    )  # fmt: skip
    return [
        base,
        base._replace(notification="repeat", timestamp_ms=base.timestamp_ms + 120_000, duration_s=180.0),
        base._replace(notification="resolve", status="resolved", resolved_at_ms=base.timestamp_ms + 240_000),
    ]


def check_template(source: str, field: str) -> str:
    """``source`` if it compiles and renders for every :func:`sample_alerts` alert; ``ValueError`` naming
    ``field`` (e.g. ``templates.header``) and the problem otherwise."""
    try:
        template = _compiled(source)
        for alert in sample_alerts():
            template.render(template_values(alert))
    except TemplateError as error:  # syntax, undefined variables, sandbox SecurityError
        kind = type(error).__name__
        raise ValueError(f"{field}: template {kind}: {error.message or error}") from None
    except Exception as error:  # a filter or helper raising on the sample values
        raise ValueError(f"{field}: template error: {type(error).__name__}: {error}") from None
    return source
