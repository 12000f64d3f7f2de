"""The run summary reads the counters of runs with many bundles (a local ``--streaming`` run of a day)."""

import apache_beam as beam
import pytest
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from airis_mon.config import load_config
from pipelines.main import _counters, _print_summary

ROUNDS = 1_200  # timer rounds, one bundle each: more than Python's default recursion limit of 1,000


class _TimerChain(beam.DoFn):
    """Each firing counts and sets the next timer, a second later: ROUNDS bundles on the local runner."""

    TICK = TimerSpec("tick", TimeDomain.WATERMARK)

    def process(self, element, timer=beam.DoFn.TimerParam(TICK)):
        timer.set(Timestamp(seconds=1))

    @on_timer(TICK)
    def tick(self, fired=beam.DoFn.TimestampParam, timer=beam.DoFn.TimerParam(TICK)):
        beam.metrics.Metrics.counter("notification_log", "notifications_written").inc()
        if fired.micros // 1_000_000 < ROUNDS:
            timer.set(Timestamp(seconds=fired.micros // 1_000_000 + 1))


def run_chain():
    pipeline = beam.Pipeline(runner="FnApiRunner")
    _ = pipeline | beam.Create([("key", 1)]) | beam.ParDo(_TimerChain())
    result = pipeline.run()
    result.wait_until_finish()
    return result


@pytest.mark.slow
def test_the_summary_reads_the_counters_of_a_run_of_many_bundles(capsys):
    with pytest.raises(RecursionError):  # what the summary ran into: Beam's metrics, read on the main thread
        run_chain().metrics().query()
    result = run_chain()
    assert _counters(result) == {("notification_log", "notifications_written"): ROUNDS}
    _print_summary(result, load_config(None), [], 1.0)
    assert f"notifications          {ROUNDS:,} logged" in capsys.readouterr().out
