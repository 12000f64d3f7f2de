"""The Beam transform: alerts -> ``(receiver, group alert)`` through the notification policy.

All alerts go to one dispatcher as a side input (inhibition and the routes see every alert, as in
Alertmanager's single dispatcher; alerts, not points, so they are few), are sorted by event time and run through
:class:`~transforms.notify_policy.dispatcher.Dispatcher`. Silenced alerts are not dispatched
(silences apply upstream, at the alert's time). In a batch run the horizon is the last alert's
time plus the longest ``group_wait`` and ``group_interval``, so that every group's pending
notification is sent, and no repeats past the data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import apache_beam as beam

from airis_mon.schema import Alert
from transforms.notify_policy.config import NotificationPolicy
from transforms.notify_policy.dispatcher import Dispatcher, Incoming
from transforms.notify_policy.synthesize import group_alert

__all__ = ["STATE", "NotifyByPolicy", "batch_horizon_ms", "dispatch_alerts", "incoming", "policy_labels"]


def policy_labels(alert: Alert) -> dict[str, str]:
    """Labels the policy matches: those of silences and routes (group tags, rule labels, ``rule``,
    ``severity``, ``source``) plus ``alertname`` = the rule's name."""
    return {**json.loads(alert.labels), "rule": alert.rule, "severity": alert.severity, "source": alert.source,
            "alertname": alert.rule}  # fmt: skip


def incoming(alert: Alert) -> Incoming:
    """The dispatcher's view of one alert notification (a resolve ends the alert at its time)."""
    ends = (alert.resolved_at_ms or alert.timestamp_ms) if alert.notification == "resolve" else None
    return Incoming(alert.timestamp_ms, policy_labels(alert), alert.starts_at_ms, ends, alert._asdict())


def batch_horizon_ms(policy: NotificationPolicy, last_ms: int) -> int:
    """``last_ms`` (epoch ms) plus the longest ``group_wait`` and ``group_interval`` of any route."""
    routes = list(policy.compile().walk())
    return last_ms + 1000 * (max(r.group_wait_s for r in routes) + max(r.group_interval_s for r in routes))


def _order(alert: Alert) -> tuple:
    return alert.timestamp_ms, alert.id, alert.notification


def dispatch_alerts(policy: NotificationPolicy, alerts: Iterable[Alert], horizon_ms: int | None = None,
                    state: dict | None = None) -> tuple[list[tuple[str, Alert]], dict]:  # fmt: skip
    """Run the dispatcher over ``alerts`` (any order; silenced ones skipped) up to ``horizon_ms``
    (default: :func:`batch_horizon_ms`); return ``(receiver, group alert)`` pairs and the new state."""
    ordered = sorted((a for a in alerts if not a.silenced), key=_order)
    if horizon_ms is None:
        if not ordered:
            return [], dict(state or {})
        horizon_ms = batch_horizon_ms(policy, ordered[-1].timestamp_ms)
    dispatcher = Dispatcher(policy, state)
    notifications = dispatcher.run((incoming(a) for a in ordered), horizon_ms)
    return [(n.receiver, group_alert(n)) for n in notifications], dispatcher.state()


STATE = "state"  # the tagged output holding the dispatcher's state after the run


def _dispatch(state: dict | None, alerts: list[Alert], policy: NotificationPolicy, horizon_ms: int | None):
    routed, new_state = dispatch_alerts(policy, alerts, horizon_ms, state)
    beam.metrics.Metrics.counter("notify_policy", "group_notifications").inc(len(routed))
    yield from routed
    yield beam.pvalue.TaggedOutput(STATE, new_state)


class NotifyByPolicy(beam.PTransform):
    """Alerts -> ``(receiver sink name, group alert)``: one notification per group and change.

    ``state``: the dispatcher's state from an earlier run (the live runner's checkpoint);
    ``horizon_ms``: flush up to here (epoch ms; default :func:`batch_horizon_ms`). The output
    ``STATE`` has one element, the new state (a dict); it is produced even when there are no
    alerts, so pending flushes still run. The transform returns ``(routed, state)``."""

    def __init__(self, policy: NotificationPolicy, state: dict | None = None, horizon_ms: int | None = None):
        super().__init__()
        self._policy = policy
        self._state = state or {}
        self._horizon_ms = horizon_ms

    def expand(self, alerts):
        outputs = (
            alerts.pipeline
            | "PreviousState" >> beam.Create([self._state])
            | "Dispatch"
            >> beam.FlatMap(_dispatch, beam.pvalue.AsList(alerts), self._policy, self._horizon_ms).with_outputs(
                STATE, main="routed"
            )
        )
        return outputs["routed"], outputs[STATE]
