"""Acknowledgements: the append-only record, the episode's stored trigger, and the PagerDuty ``acknowledge``
sent exactly once through the live runner's real outbox to a loopback Events API v2 receiver that enforces
PagerDuty's rules (tests/sinks/pagerduty/receiver.py)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from console.acknowledgements import (
    ACK_FILE,
    AcknowledgementStore,
    Acknowledger,
    ack_outbox_path,
    episode_notifications,
    find_episode_trigger,
)
from sinks.pagerduty.encoder import dedup_key
from tests.console.ack_peers import (
    KEY,
    RESOLVE,
    TRIGGER,
    history,
    make_config,
    outbox_for,
    store_alerts,
    write_cycle,
)
from tests.sinks.pagerduty.receiver import PagerDutyEvents
from tests.sinks.receivers import Receiver, scripted
from tests.sinks.slack.slack_receiver import slack_webhook

ACK_AT_S = TRIGGER.timestamp_ms / 1000 + 120  # two minutes after the trigger


def clock() -> float:
    return ACK_AT_S


@pytest.fixture
def folders(tmp_path):
    output, state = tmp_path / "out", tmp_path / "out" / "state"
    output.mkdir()
    return output, state


def acknowledger(config, output, state) -> Acknowledger:
    return Acknowledger(config, output, state, AcknowledgementStore(output), clock=clock)


def bodies(receiver) -> list[dict]:
    return [json.loads(r.body) for r in receiver.requests]


# --- the store ----------------------------------------------------------------------------------------------------


def test_the_first_acknowledgement_wins_and_lines_have_exactly_the_indexed_fields(tmp_path):
    store = AcknowledgementStore(tmp_path)
    first, new = store.record("a1", "slack:roadrunner", "slack", 1_000)
    again, new_again = store.record("a1", "oncall", "console", 2_000)
    assert new and not new_again and again == first and first.by == "slack:roadrunner"
    store.record_delivery("a1", "slack", "slack_update", "delivered", 200, 1, 0, "", 1_500)
    lines = [json.loads(line) for line in (tmp_path / ACK_FILE).read_text().splitlines()]
    assert lines == [
        {"type": "ack", "alert_id": "a1", "by": "slack:roadrunner", "via": "slack", "at_ms": 1_000},
        {"type": "delivery", "alert_id": "a1", "sink": "slack", "notification": "slack_update",
         "outcome": "delivered", "status": 200, "attempts": 1, "retries": 0, "reason": "", "at_ms": 1_500},
    ]  # fmt: skip
    reopened = AcknowledgementStore(tmp_path)
    assert reopened.get("a1") == first and reopened.all() == [first] and reopened.get("a2") is None
    assert [d.notification for d in reopened.deliveries("a1")] == ["slack_update"]


def test_reading_a_file_with_two_ack_lines_of_one_episode_answers_the_first(tmp_path):
    lines = [{"type": "ack", "alert_id": "a1", "by": by, "via": "api", "at_ms": at} for by, at in (("x", 1), ("y", 2))]
    (tmp_path / ACK_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    store = AcknowledgementStore(tmp_path)
    assert store.get("a1").by == "x" and store.record("a1", "z", "api", 3)[0].by == "x"


def test_a_torn_last_line_is_ended_and_ignored(tmp_path):
    AcknowledgementStore(tmp_path).record("a1", "oncall", "console", 1_000)
    with open(tmp_path / ACK_FILE, "a") as handle:
        handle.write('{"type": "ack", "alert_id": "a2", "by": "x", "vi')  # a crash mid-append
    store = AcknowledgementStore(tmp_path)
    assert [a.alert_id for a in store.all()] == ["a1"]
    ack, first = store.record("a2", "oncall", "api", 2_000)
    assert first and AcknowledgementStore(tmp_path).get("a2") == ack
    assert (tmp_path / ACK_FILE).read_text().count("\n") == 3  # a1, the torn line ended, a2


def test_concurrent_acknowledgements_from_threads_and_a_second_store_record_one(tmp_path):
    stores = [AcknowledgementStore(tmp_path), AcknowledgementStore(tmp_path)]  # as two processes would
    results, start = [], threading.Barrier(8)

    def click(i: int) -> None:
        start.wait()
        results.append(stores[i % 2].record("a1", f"user{i}", "api", 1_000 + i))

    threads = [threading.Thread(target=click, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(first for _, first in results) == 1 and len({ack for ack, _ in results}) == 1
    assert (tmp_path / ACK_FILE).read_text().count('"type": "ack"') == 1


@pytest.mark.parametrize(
    "args, field",
    [(("", "x", "api", 1), "alert_id"), (("../etc", "x", "api", 1), "alert_id"), (("a1", "", "api", 1), "by"),
     (("a1", "x", "email", 1), "via"), (("a1", "x", "api", -1), "at_ms"), (("a1", "x", "api", 1.5), "at_ms")],
)  # fmt: skip
def test_bad_fields_are_refused_naming_the_field(tmp_path, args, field):
    with pytest.raises(ValueError, match=field):
        AcknowledgementStore(tmp_path).record(*args)
    assert not (tmp_path / ACK_FILE).read_text()


# --- the stored episode ---------------------------------------------------------------------------------------------


def test_the_trigger_is_found_across_date_folders_and_many_files(folders):
    output, _ = folders
    later = TRIGGER._replace(notification="repeat", timestamp_ms=TRIGGER.timestamp_ms + 2 * 86_400_000)
    store_alerts(output, [TRIGGER])
    for i in range(30):  # other episodes' files, as the live runner writes one a cycle
        store_alerts(output, [TRIGGER._replace(id=f"other{i:03d}")], run=f"r{i + 2}")
    store_alerts(output, [later], run="late")
    assert find_episode_trigger(output, TRIGGER.id) == TRIGGER
    assert episode_notifications(output, TRIGGER.id) == [TRIGGER, later]
    assert find_episode_trigger(output, "unknown0") is None


def test_without_the_trigger_stored_the_latest_notification_is_answered(folders):
    output, _ = folders
    repeat = TRIGGER._replace(notification="repeat", timestamp_ms=TRIGGER.timestamp_ms + 60_000)
    store_alerts(output, [repeat._replace(timestamp_ms=repeat.timestamp_ms - 1), repeat])
    assert find_episode_trigger(output, TRIGGER.id) == repeat
    assert find_episode_trigger(folders[0] / "nothing-here", TRIGGER.id) is None


# --- PagerDuty acknowledge through the outbox -----------------------------------------------------------------------


def test_trigger_then_one_acknowledge_with_its_dedup_key_and_nothing_resent_after_a_restart(folders, monkeypatch):
    output, state = folders
    events = PagerDutyEvents()
    with Receiver(events) as pd, Receiver(slack_webhook) as slack:
        config = make_config(output.parent, monkeypatch, {"pager": pd.url}, slack.url)
        store_alerts(output, [TRIGGER])
        write_cycle(state, 1, [("pager", TRIGGER), ("oncall", TRIGGER)])
        outbox = outbox_for(config, output, state)
        assert outbox.deliver_pending() == 2

        result = acknowledger(config, output, state).acknowledge(TRIGGER.id, "oncall", "console")
        assert result.found and result.first and result.pagerduty_sinks == ("pager",) and not result.resolved
        assert result.ack.at_ms == int(ACK_AT_S * 1000)
        assert outbox.backlog() == 1 and outbox.deliver_pending() == 1

        again = acknowledger(config, output, state).acknowledge(TRIGGER.id, "slack:roadrunner", "slack")
        assert again.found and not again.first and again.ack == result.ack and again.pagerduty_sinks == ()
        assert outbox.deliver_pending() == 0
        # A crash after the delivery and before the file's removal leaves it behind: a restart resends nothing.
        ack_outbox_path(state, TRIGGER.id).write_text(
            json.dumps({"key": f"ack:{TRIGGER.id}:pager", "sink": "pager",
                        "alert": TRIGGER._replace(notification="acknowledge")._asdict()}) + "\n")  # fmt: skip
        restarted = outbox_for(config, output, state)
        assert restarted.deliver_pending() == 0 and not ack_outbox_path(state, TRIGGER.id).exists()

    sent = bodies(pd)
    assert [b["event_action"] for b in sent] == ["trigger", "acknowledge"]
    assert sent[1] == {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": sent[0]["dedup_key"]}
    assert events.incidents == {dedup_key(TRIGGER): "acknowledged"}
    assert len(slack.requests) == 1  # the trigger only: Slack never receives an acknowledge
    lines = history(output)
    assert [(h["sink"], h["notification"], h["outcome"]) for h in lines] == [
        ("oncall", "trigger", "delivered"), ("pager", "trigger", "delivered"),  # a cycle's order: time, id, sink
        ("pager", "acknowledge", "delivered")]  # fmt: skip
    assert lines[-1]["key"] == f"ack:{TRIGGER.id}:pager" and lines[-1]["status"] == 202
    assert AcknowledgementStore(output).deliveries(TRIGGER.id) == []  # the history is its one record


def test_a_trigger_still_pending_in_the_outbox_is_sent_before_its_acknowledge(folders, monkeypatch):
    output, state = folders
    events = PagerDutyEvents()
    with Receiver(events) as pd:
        config = make_config(output.parent, monkeypatch, {"pager": pd.url})
        store_alerts(output, [TRIGGER])
        write_cycle(state, 7, [("pager", TRIGGER)])  # committed, not delivered yet
        result = acknowledger(config, output, state).acknowledge(TRIGGER.id, "oncall", "api")
        assert result.pagerduty_sinks == ("pager",)
        assert [p.name for p in outbox_for(config, output, state).pending_files()] == [
            "c00000007.jsonl", f"ack-{TRIGGER.id}.jsonl"]  # fmt: skip
        assert outbox_for(config, output, state).deliver_pending() == 2
    assert [(b["event_action"], b["dedup_key"]) for b in bodies(pd)] == [
        ("trigger", dedup_key(TRIGGER)), ("acknowledge", dedup_key(TRIGGER))]  # fmt: skip
    assert events.incidents == {dedup_key(TRIGGER): "acknowledged"}


def test_only_pagerduty_sinks_that_were_sent_the_trigger_are_acknowledged(folders, monkeypatch):
    output, state = folders
    with Receiver(PagerDutyEvents()) as pd, Receiver(scripted(*[(400, {}, b'{"status":"invalid event"}')] * 4)) as bad:
        config = make_config(output.parent, monkeypatch, {"pager": pd.url, "broken": bad.url, "idle": pd.url})
        store_alerts(output, [TRIGGER])
        write_cycle(state, 1, [("pager", TRIGGER), ("broken", TRIGGER)])  # "idle" was never routed the alert
        outbox = outbox_for(config, output, state)
        outbox.deliver_pending()
        assert {h["sink"]: h["outcome"] for h in history(output)} == {"pager": "delivered", "broken": "dead_lettered"}
        result = acknowledger(config, output, state).acknowledge(TRIGGER.id, "oncall", "console")
        assert result.pagerduty_sinks == ("pager",)
        lines = ack_outbox_path(state, TRIGGER.id).read_text().splitlines()
        assert [json.loads(line)["key"] for line in lines] == [f"ack:{TRIGGER.id}:pager"]
        assert outbox.deliver_pending() == 1
    assert [b["event_action"] for b in bodies(pd)] == ["trigger", "acknowledge"] and len(bad.requests) == 1


def test_a_resolved_episode_is_recorded_but_sends_nothing_and_an_unknown_one_records_nothing(folders, monkeypatch):
    output, state = folders
    with Receiver(PagerDutyEvents()) as pd:
        config = make_config(output.parent, monkeypatch, {"pager": pd.url})
        store_alerts(output, [TRIGGER, RESOLVE])
        write_cycle(state, 1, [("pager", TRIGGER), ("pager", RESOLVE)])
        outbox = outbox_for(config, output, state)
        outbox.deliver_pending()
        acks = acknowledger(config, output, state)
        result = acks.acknowledge(TRIGGER.id, "oncall", "console")
        assert result.found and result.first and result.resolved and result.pagerduty_sinks == ()
        assert not ack_outbox_path(state, TRIGGER.id).exists() and outbox.deliver_pending() == 0

        unknown = acks.acknowledge("0123456789abcdef01234567", "oncall", "console")
        assert not unknown.found and unknown.ack is None and not unknown.first
        assert acks.store.get("0123456789abcdef01234567") is None
        with pytest.raises(ValueError, match="alert_id"):
            acks.acknowledge("../../etc/passwd", "oncall", "console")
    assert [b["event_action"] for b in bodies(pd)] == ["trigger", "resolve"]


def test_an_acknowledge_routed_to_another_sink_type_is_dead_lettered_not_posted(folders, monkeypatch):
    output, state = folders
    with Receiver(slack_webhook) as slack:
        config = make_config(output.parent, monkeypatch, {}, slack.url)
        path = ack_outbox_path(state, TRIGGER.id)
        path.parent.mkdir(parents=True)
        line = {"key": f"ack:{TRIGGER.id}:oncall", "sink": "oncall",
                "alert": TRIGGER._replace(notification="acknowledge")._asdict()}  # fmt: skip
        path.write_text(json.dumps(line) + "\n")
        assert outbox_for(config, output, state).deliver_pending() == 1
    assert slack.requests == []
    [line] = history(output)
    assert (
        line["outcome"] == "dead_lettered" and line["reason"] == "sink type 'slack' takes no acknowledge notifications"
    )


def test_finding_the_episode_among_many_small_files_stays_fast(folders):
    output, _ = folders
    for i in range(400):
        store_alerts(output, [TRIGGER._replace(id=f"other{i:04d}")], run=f"r{i:04d}")
    store_alerts(output, [TRIGGER], run="z")
    started = time.perf_counter()
    assert find_episode_trigger(output, TRIGGER.id) == TRIGGER
    assert find_episode_trigger(output, "unknown0") is None
    assert time.perf_counter() - started < 5.0  # two scans of 401 files (measured ~0.2 s on 2 cores)
