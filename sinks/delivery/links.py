"""Per-alert link templates (``dashboard_url``, ``acknowledge_url``) and the
plain-text formatting chat sinks share (UTC times, durations, values).

A link template is a Python ``str.format`` template rendered per alert::

    dashboard_url: "https://grafana.example/d/x?var-model={model_id}&from={starts_at_ms}&to={timestamp_ms}"

Fields: ``alert_id, rule, metric, model_id, environment, source, severity,
alert_type, starts_at_ms, timestamp_ms`` (epoch ms, UTC) and ``labels`` (dict;
a missing label renders empty). Every value is percent-encoded (``urllib.parse.quote``, nothing safe)
before it is inserted, so it is safe in a path or a query. A template is
test-rendered when the config loads: a typo is a config error, not a crash.

Shared by the Slack, Teams and PagerDuty sinks.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from airis_mon.schema import Alert, tags_from_json

__all__ = [
    "LINK_FIELDS",
    "check_http_url",
    "check_link_template",
    "format_duration",
    "format_utc",
    "format_value",
    "render_link",
]

#: The fields a link template may use (``labels`` is a dict besides these).
LINK_FIELDS = (
    "alert_id", "rule", "metric", "model_id", "environment", "source", "severity", "alert_type", "starts_at_ms",
    "timestamp_ms",
)  # fmt: skip


def _values(alert: Alert) -> dict[str, object]:
    return {
        "alert_id": alert.id, "rule": alert.rule, "metric": alert.metric, "model_id": alert.model_id,
        "environment": alert.environment, "source": alert.source, "severity": alert.severity,
        "alert_type": alert.alert_type, "starts_at_ms": alert.starts_at_ms, "timestamp_ms": alert.timestamp_ms,
    }  # fmt: skip


def _render(template: str, values: dict[str, object], labels: dict[str, str]) -> str:
    quoted = {key: quote(str(value), safe="") for key, value in values.items()}
    quoted_labels = defaultdict(str, {key: quote(str(value), safe="") for key, value in labels.items()})
    return template.format_map({**quoted, "labels": quoted_labels})


def render_link(template: str, alert: Alert) -> str:
    """``template`` rendered for ``alert``, every value percent-encoded."""
    try:
        labels = tags_from_json(alert.labels)
    except ValueError:  # never fail a notification over malformed labels
        labels = {}
    return _render(template, _values(alert), labels if isinstance(labels, dict) else {})


def check_http_url(url: str, what: str) -> str:
    """``url`` if it is an absolute http(s) URL; the ``ValueError`` never shows it (it may be a secret)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http:// or https:// URL")
    return url.strip()


def check_link_template(template: str, what: str) -> str:
    """``template`` if it renders to an http(s) URL with sample values; ``ValueError`` otherwise."""
    sample = dict.fromkeys(LINK_FIELDS, "x")
    try:
        rendered = _render(template, sample, {})
    except KeyError as error:
        raise ValueError(f"unknown {what} field {error}; use {', '.join(LINK_FIELDS)}, labels[NAME]") from None
    except (ValueError, IndexError, AttributeError, TypeError) as error:
        raise ValueError(f"invalid {what} template: {error}") from None
    check_http_url(rendered, what)
    return template


def format_utc(epoch_ms: int) -> str:
    """``2026-11-28 09:32:00 UTC``."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float) -> str:
    """``45s``, ``2m 0s``, ``1h 5m``, ``2d 3h``: the two largest units."""
    if not math.isfinite(seconds) or seconds < 0:
        return "n/a"
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def format_value(value: float) -> str:
    """Six significant digits; ``n/a`` for NaN (a no-data alert has no value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.6g}"
