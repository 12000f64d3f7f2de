"""The live runner: ``python -m pipelines.serve`` (cycles, checkpoint, outbox, /metrics)."""
