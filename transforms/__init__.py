"""Transforms between sources and sinks: normalize, aggregate, rules, health."""
