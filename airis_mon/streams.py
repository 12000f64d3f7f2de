"""Names of the PCollections that flow between stages.

Every source's ``expand`` returns a dict with these keys, so the main
pipeline wires any source the same way:

- ``POINTS``: ``pyarrow.Table`` batches of :data:`~airis_mon.schema.RAW_POINT_SCHEMA`
- ``EVENTS``: :class:`~airis_mon.schema.Event` rows
- ``DEAD_LETTERS``: :class:`~airis_mon.schema.DeadLetter` rows
- ``HEALTH``: :class:`~airis_mon.schema.HealthRecord` rows
"""

POINTS = "points"
EVENTS = "events"
DEAD_LETTERS = "dead_letters"
HEALTH = "health"

SOURCE_OUTPUTS = (POINTS, EVENTS, DEAD_LETTERS, HEALTH)

__all__ = ["DEAD_LETTERS", "EVENTS", "HEALTH", "POINTS", "SOURCE_OUTPUTS"]
