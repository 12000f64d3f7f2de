"""Throughput benchmarks for AIRIS-MON (run as ``python -m benchmarks.<name>``)."""
