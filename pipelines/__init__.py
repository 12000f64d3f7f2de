"""Runnable jobs: ``python -m pipelines.main`` and friends."""

from airis_mon.logs import drop_harmless_beam_lines

drop_harmless_beam_lines()  # before any job imports Beam, which logs one of them at import time
