"""Runnable jobs: ``python -m pipelines.main`` and friends."""
