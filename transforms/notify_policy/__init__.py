"""Notification policy as in Alertmanager: a route tree with matchers, grouping and its timers,
inhibition rules and time intervals, dispatched in event time.

Modules: :mod:`.matchers` (``name=~"regex"`` syntax), :mod:`.time_intervals`,
:mod:`.config` (the pydantic models), :mod:`.dispatcher` (the pure, deterministic
dispatcher), :mod:`.synthesize` (one :class:`~airis_mon.schema.Alert` per group
notification) and :mod:`.transform` (the Beam transform).
"""
