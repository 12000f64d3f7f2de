"""Sinks: one folder per destination, each a ``WriteToX(config)`` PTransform."""
