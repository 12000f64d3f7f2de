"""``LiveRunner``: the main graph run cycle after cycle, continuing where the last cycle stopped.

One cycle:

1. **Plan** (written to ``STATE/plan.json`` before anything runs): the
   closed spool segments of every ``gateway`` integration, the recorded files
   not read before (``payload_files``, ``point_files``), the polled
   integrations whose ``poll.interval_s`` has passed, the clock ``now_ms`` and
   the horizon ``closed_until_ms``: the last window boundary at or before
   ``min(now, oldest record the spool may still hand over) - live.allowed_lateness``.
2. **Run** the main graph (:func:`pipelines.main.build_pipeline` with a
   :class:`~pipelines.live.transforms.CycleSpec`) on the in-process runner:
   windows ending at or before the horizon are aggregated, stored and
   evaluated once; points of windows still open are carried to the next cycle;
   points of windows already evaluated are dead letters; the rules continue
   from the checkpoint; notifications go to the cycle's outbox.
3. **Commit**: the outbox moves to ``STATE/outbox/``, then the checkpoint is
   replaced atomically (this is the commit point), then the spool segments
   move to ``done/`` and the plan is removed.

A process killed at any point re-runs the planned cycle on start: the same
segments, files and clock give the same storage file names and contents
(``part-liveIIIIIIIIcNNNNNNNN-*``), so nothing is lost or stored twice, and
the same outbox, whose notifications :mod:`pipelines.live.outbox` delivers
once each. Polls are the one exception: a re-run polls again (a poll is a
snapshot of now; the lost one was never acknowledged to anyone).

Cutting the input into cycles anywhere gives the alerts of one batch run over
all of it (episode ids included), as long as no point is later than
``live.allowed_lateness``; :meth:`LiveRunner.flush` evaluates what is still
open at the end of the input, as a batch run's end does.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from airis_mon.config import Config
from airis_mon.files import fsync_directory
from airis_mon.registry import get_component
from pipelines.live.checkpoint import (
    CARRY_FILE,
    CONTEXT_FILE,
    DATA_END_FILE,
    HEALTH_FILE,
    NOTIFY_POLICY_FILE,
    OUTBOX_FILE,
    RULES_FILE,
    Checkpoint,
    CyclePlan,
    decode_context,
    decode_data_end,
    decode_entries,
    decode_policy,
    last_successes,
    load_checkpoint,
    load_plan,
    save_checkpoint,
    save_plan,
)
from pipelines.live.transforms import CycleSpec
from sources.file_globs import FileGlobsConfig
from sources.gateway.config import GatewayConfig
from sources.gateway.spool import closed_segments, mark_processed, oldest_unread_ms

__all__ = ["CycleReport", "LiveRunner", "describe"]

LOG = logging.getLogger("airis_mon.live")
#: Polled integrations without ``poll.interval_s`` are polled this often in a live run, s.
DEFAULT_POLL_INTERVAL_S = 60
_NO_HORIZON = 2**62  # epoch ms beyond any data (a final flush)


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did (times in epoch ms, durations in s)."""

    cycle: int
    now_ms: int
    closed_until_ms: int
    segments: int
    files: int
    polls: int
    seconds: float
    counters: dict[str, int]
    recovered: bool = False


class LiveRunner:
    """Runs cycles over ``config`` with its state in ``state_dir`` (see the module docstring).

    ``output``: the storage folder (``--output``); ``num_shards``: aggregation
    shards per cycle; ``clock``: wall time in s (tests pass their own).
    """

    def __init__(self, config: Config, output: str, state_dir: str | Path | None = None, num_shards: int = 4,
                 clock=time.time):  # fmt: skip
        self.config = config
        self.output = str(Path(output).resolve())
        self.state_dir = Path(state_dir or config.live.state_dir or Path(self.output) / "state").resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.outbox_dir = self.state_dir / "outbox"
        self.carry_dir = self.state_dir / "carry"
        self._num_shards = num_shards
        self._clock = clock
        self._window_ms = config.aggregation.window_seconds * 1000
        self._lateness_ms = config.live.allowed_lateness_s * 1000
        self.checkpoint = load_checkpoint(self.state_dir)

    # -- planning -----------------------------------------------------------------------------------------

    def gateways(self) -> list[GatewayConfig]:
        """The ``type: gateway`` integrations (their spools are this runner's input)."""
        return [i for i in self.config.integrations if isinstance(i, GatewayConfig)]

    def _plan(self, now_ms: int, final: bool) -> CyclePlan:
        cp = self.checkpoint
        segments, files, polls = {}, {}, []
        position_ms = now_ms
        if not final:
            for integration in self.config.integrations:
                if isinstance(integration, GatewayConfig):
                    # The open segment's oldest record first, then the closed list: a segment closed in
                    # between is in the list, so nothing received before the position is left unread.
                    oldest = oldest_unread_ms(integration.spool)
                    if oldest is not None:
                        position_ms = min(position_ms, oldest)
                    segments[integration.name] = [str(p) for p in closed_segments(integration.spool)]
                elif isinstance(integration, FileGlobsConfig):
                    seen = {tuple(entry) for entry in cp.files_read.get(integration.name, [])}
                    new = [_identity(path) for path in integration.files()]
                    files[integration.name] = [list(entry) for entry in new if tuple(entry) not in seen]
                else:
                    interval_s = getattr(getattr(integration, "poll", None), "interval_s", None)
                    interval_ms = (interval_s or DEFAULT_POLL_INTERVAL_S) * 1000
                    if now_ms - cp.last_poll_ms.get(integration.name, -interval_ms) >= interval_ms:
                        polls.append(integration.name)
        if final:
            closed_until = _NO_HORIZON
        else:
            horizon = position_ms - self._lateness_ms
            closed_until = horizon - horizon % self._window_ms
            if cp.closed_until_ms is not None:
                closed_until = max(closed_until, cp.closed_until_ms)  # the horizon never moves back
        return CyclePlan(cp.cycle + 1, now_ms, closed_until, segments, files, polls, final)

    # -- running ------------------------------------------------------------------------------------------

    def recover(self) -> CycleReport | None:
        """Finish what a killed process left: re-run its planned cycle, or complete a committed one."""
        plan = load_plan(self.state_dir)
        if plan is None:
            return None
        if plan.cycle == self.checkpoint.cycle:
            self._finish(plan)  # committed; only the spool moves and clean-up were left
            return None
        if plan.cycle != self.checkpoint.cycle + 1:
            raise RuntimeError(f"{self.state_dir}: plan of cycle {plan.cycle} does not follow checkpoint "
                               f"{self.checkpoint.cycle}")  # fmt: skip
        LOG.warning("re-running cycle %d, interrupted before its commit", plan.cycle)
        return replace(self._run(plan), recovered=True)

    def run_cycle(self, now_ms: int | None = None) -> CycleReport:
        """Plan and run one cycle at ``now_ms`` (default: the clock); returns what it did."""
        self.recover()
        now_ms = int(self._clock() * 1000) if now_ms is None else now_ms
        return self._run(self._plan(now_ms, final=False))

    def flush(self) -> CycleReport:
        """Evaluate everything still open, as at the end of a batch run (no new input is read)."""
        self.recover()
        now_ms = max(int(self._clock() * 1000), self.checkpoint.data_end_ms or 0)
        return self._run(self._plan(now_ms, final=True))

    def _staging(self, cycle: int) -> Path:
        return self.state_dir / "cycles" / f"c{cycle:08d}"

    def _run(self, plan: CyclePlan) -> CycleReport:
        started = time.monotonic()
        save_plan(self.state_dir, plan)
        staging = self._staging(plan.cycle)
        if staging.exists():
            shutil.rmtree(staging)  # a killed attempt's half-written files
        staging.mkdir(parents=True)
        result = self._execute(plan, staging)
        self._commit(plan, staging)
        self._finish(plan)
        return CycleReport(
            plan.cycle,
            plan.now_ms,
            plan.closed_until_ms,
            sum(len(s) for s in plan.segments.values()),
            sum(len(f) for f in plan.files.values()),
            len(plan.polls),
            time.monotonic() - started,
            _counters(result),
        )

    def _sources(self, plan: CyclePlan) -> list[tuple[str, beam.PTransform]]:
        sources = []
        for integration in self.config.integrations:
            name = integration.name
            transform_class = get_component("source", integration.type).transform_class()
            if isinstance(integration, GatewayConfig):
                if plan.segments.get(name):
                    sources.append((name, transform_class(integration, segments=plan.segments[name])))
            elif isinstance(integration, FileGlobsConfig):
                paths = [glob.escape(entry[0]) for entry in plan.files.get(name, [])]
                if paths:
                    sources.append((name, transform_class(integration.model_copy(update={"paths": paths}))))
            elif name in plan.polls:
                sources.append((name, transform_class(integration, bounded=True)))
        return sources

    def _execute(self, plan: CyclePlan, staging: Path):
        from pipelines.main import build_pipeline  # the main graph; imported here to keep imports one-way

        cp = self.checkpoint
        spec = CycleSpec(
            sources=self._sources(plan),
            window_ms=self._window_ms,
            run_key=cp.run_key(plan.cycle),
            staging=str(staging),
            closed_until_ms=plan.closed_until_ms,
            previous_closed_until_ms=cp.closed_until_ms,
            until_ms=cp.data_end_ms if plan.final else None,
            carry=[path for path, earliest in cp.carry if plan.final or earliest < plan.closed_until_ms],
            rule_entries=cp.rules,
            context_events=cp.context_events,
            notify_policy_state=cp.notify_policy,
        )
        pipeline = beam.Pipeline(runner=FnApiRunner())
        build_pipeline(pipeline, self._with_stored_silences(), self.output, self._num_shards, streaming=False,
                       cycle=spec)  # fmt: skip
        result = pipeline.run()
        result.wait_until_finish()
        return result

    def _with_stored_silences(self) -> Config:
        """The config with the silences of each gateway's store (``/api/v2/silences``) after its own: read
        at every cycle, so a silence created through the API applies from the next cycle on."""
        from airis_mon.silence_store import SilenceStore

        stored = [s for g in self.gateways() for s in SilenceStore(g.silences_path()).all()]
        if not stored:
            return self.config
        return self.config.model_copy(update={"silences": (*self.config.silences, *stored)})

    def _commit(self, plan: CyclePlan, staging: Path) -> None:
        cp = self.checkpoint
        outbox = staging / OUTBOX_FILE
        if outbox.stat().st_size:
            self.outbox_dir.mkdir(exist_ok=True)
            os.replace(outbox, self.outbox_dir / f"c{plan.cycle:08d}.jsonl")
            fsync_directory(self.outbox_dir, strict=True)
        carry = [entry for entry in cp.carry if not plan.final and entry[1] >= plan.closed_until_ms]  # not read
        staged_carry = staging / CARRY_FILE
        earliest = _earliest_point_ms(staged_carry)
        if earliest is not None:
            self.carry_dir.mkdir(exist_ok=True)
            kept = self.carry_dir / f"c{plan.cycle:08d}.parquet"
            os.replace(staged_carry, kept)
            fsync_directory(self.carry_dir, strict=True)
            carry.append([str(kept), earliest])
        data_end = decode_data_end((staging / DATA_END_FILE).read_text())
        data_end_ms = max((e for e in (cp.data_end_ms, data_end) if e is not None), default=None)
        files_read = {name: list(entries) for name, entries in cp.files_read.items()}
        for name, entries in plan.files.items():
            files_read.setdefault(name, []).extend(entries)
        committed = Checkpoint(
            instance=cp.instance,
            cycle=plan.cycle,
            closed_until_ms=_closed_after(plan, cp.closed_until_ms, data_end_ms),
            data_end_ms=data_end_ms,
            rules=decode_entries((staging / RULES_FILE).read_text()),
            carry=carry,
            context_events=decode_context((staging / CONTEXT_FILE).read_text()),
            files_read=files_read,
            last_poll_ms={**cp.last_poll_ms, **dict.fromkeys(plan.polls, plan.now_ms)},
            last_success_ms=_newest(cp.last_success_ms, last_successes((staging / HEALTH_FILE).read_text())),
            notify_policy=decode_policy(_text_or_empty(staging / NOTIFY_POLICY_FILE), cp.notify_policy),
        )
        save_checkpoint(self.state_dir, committed)  # the commit point
        self.checkpoint = committed

    def _finish(self, plan: CyclePlan) -> None:
        for integration in self.gateways():
            if plan.segments.get(integration.name):
                mark_processed(integration.spool, plan.segments[integration.name])
        save_plan(self.state_dir, None)
        referenced = {path for path, _ in self.checkpoint.carry}
        for consumed in self.carry_dir.glob("c*.parquet"):
            if str(consumed) not in referenced:
                consumed.unlink()
        for old in (self.state_dir / "cycles").glob("c*"):
            if old.name < f"c{plan.cycle:08d}":
                shutil.rmtree(old, ignore_errors=True)

    def summary(self) -> dict:
        """The committed state, for logs and /metrics: cycle, horizon, alerts by state."""
        cp = self.checkpoint
        states = [entry.state.phase for entry in cp.rules]
        return {
            "cycle": cp.cycle,
            "closed_until_ms": cp.closed_until_ms,
            "data_end_ms": cp.data_end_ms,
            "pending": states.count("pending"),
            "firing": states.count("firing"),
        }


def _text_or_empty(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _earliest_point_ms(path: Path) -> int | None:
    """The first (earliest: the file is sorted by time) point of a carry file; None when it holds none."""
    metadata = pq.read_metadata(path)
    if metadata.num_rows == 0:
        return None
    return int(pq.read_table(path, columns=["timestamp_ms"]).column(0)[0].as_py())


def _newest(before: dict[str, int], now: dict[str, int]) -> dict[str, int]:
    return {name: max(before.get(name, 0), now.get(name, 0)) for name in {*before, *now}}


def _closed_after(plan: CyclePlan, previous: int | None, data_end_ms: int | None) -> int | None:
    """The horizon committed by ``plan``: its own, or after a final flush the end of the data."""
    if not plan.final:
        return plan.closed_until_ms
    return max((t for t in (previous, data_end_ms) if t is not None), default=None)


def _identity(path: str) -> list:
    """A recorded file's identity: path, size (bytes), modification time (ns)."""
    stat = os.stat(path)
    return [path, stat.st_size, stat.st_mtime_ns]


def _counters(result) -> dict[str, int]:
    """Every Beam counter of a finished cycle, as ``namespace/name``."""
    totals: dict[str, int] = {}
    for counter in result.metrics().query()["counters"]:
        key = f"{counter.key.metric.namespace}/{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[key] = totals.get(key, 0) + value
    return totals


def describe(report: CycleReport) -> str:
    """One log line for a cycle."""
    return json.dumps({k: v for k, v in report.__dict__.items() if k != "counters"}, sort_keys=True)
