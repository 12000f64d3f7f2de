"""The oracle: a real Alertmanager and the AIRIS-MON dispatcher get the same alert sequence.

Alertmanager 0.25 (Debian's ``prometheus-alertmanager``) runs on 127.0.0.1 with a route tree
(matchers of all four kinds, group_by, a child with ``continue``, a repeat, a muted route, an
alert that started before group_wait and is sent at once), an inhibit rule
and ``webhook_configs`` receivers that point at a loopback server here, which records each
notification's arrival time, receiver, groupKey and alerts. The scripted sequence is sent in
real time through API v2 (``POST /api/v2/alerts``); the dispatcher is fed the same alerts at
the same relative times. Groups, members and notification times (within half a second of the
first alert's time, at millisecond resolution) must be the same.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import threading
import time
import typing
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from transforms.notify_policy.config import NotificationPolicy
from transforms.notify_policy.dispatcher import Dispatcher, Incoming

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(ALERTMANAGER is None, reason="Debian's prometheus-alertmanager is not installed")

ROUTE = {
    "receiver": "team",
    "group_by": ["alertname", "model_id"],
    "group_wait": "2s",
    "group_interval": "4s",
    "repeat_interval": "9s",
    "routes": [
        {
            "matchers": ['severity=~"high|critical"', 'team!="infra"'],
            "receiver": "pager",
            "group_by": ["alertname"],
            "continue": True,
        },
        {"matchers": ['team="infra"', 'env!~"dev|test"'], "receiver": "infra"},
        {"matchers": ['model_id=~"m[0-9]+"'], "receiver": "team"},
        {"matchers": ['team="muted"'], "receiver": "team", "mute_time_intervals": ["always"]},
    ],
}
TIME_INTERVALS = [{"name": "always", "time_intervals": [{"times": [{"start_time": "00:00", "end_time": "24:00"}]}]}]
INHIBIT = [
    {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'], "equal": ["model_id"]}
]

A1 = {"alertname": "HighLatency", "model_id": "m1", "severity": "high", "team": "fraud"}
A2 = {"alertname": "HighLatency", "model_id": "m2", "severity": "critical", "team": "fraud"}
A3 = {"alertname": "HighLatency", "model_id": "m3", "severity": "high", "team": "fraud"}
W1 = {"alertname": "DriftWarning", "model_id": "m2", "severity": "warning", "team": "fraud"}  # inhibited by A2
I1 = {"alertname": "DiskFull", "team": "infra", "env": "prod", "severity": "high"}  # the infra route, repeats
I2 = {"alertname": "DiskFull", "team": "infra", "env": "dev", "severity": "low"}  # no child matches: the root
OLD = {"alertname": "Old", "model_id": "m9", "severity": "low", "team": "fraud"}  # started 60 s before: sent at once
M1 = {"alertname": "Muted", "team": "muted", "severity": "high"}  # the pager route; its muted route sends nothing
#: (seconds after the first alert, labels, fire | resolve); OLD starts 60 s before it is sent
SCRIPT = [
    (0.0, A1, "fire"),
    (0.5, A2, "fire"),
    (1.0, W1, "fire"),
    (1.2, I1, "fire"),
    (1.5, I2, "fire"),
    (2.7, OLD, "fire"),
    (3.0, M1, "fire"),
    (5.0, A3, "fire"),
    (7.3, A1, "resolve"),
    (7.8, OLD, "resolve"),
    (8.5, A2, "resolve"),
    (9.5, M1, "resolve"),  # not 9.0: its group flushes then, and which comes first is a race
    (13.0, A3, "resolve"),
    (14.5, W1, "resolve"),
    (17.0, I1, "resolve"),
    (28.0, I2, "resolve"),
]
# No alert arrives within 0.3 s of a flush of its own group (a tie is a race in Alertmanager).
END_S = 33.0  # the last flush is the root group's at 31.5 s


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Hook(BaseHTTPRequestHandler):
    received: typing.ClassVar[list] = []

    def do_POST(self):
        arrived = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((arrived, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _post(port: int, alerts: list[dict]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _members(alerts) -> tuple[frozenset, frozenset]:
    firing = frozenset(json.dumps(a["labels"], sort_keys=True) for a in alerts if a["status"] == "firing")
    resolved = frozenset(json.dumps(a["labels"], sort_keys=True) for a in alerts if a["status"] == "resolved")
    return firing, resolved


@pytest.fixture
def alertmanager(tmp_path):
    hook = ThreadingHTTPServer(("127.0.0.1", 0), type("Hook", (_Hook,), {"received": []}))
    threading.Thread(target=hook.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}"
    receivers = [
        {"name": n, "webhook_configs": [{"url": f"{hook_url}/{n}", "send_resolved": True}]}
        for n in ("team", "pager", "infra")
    ]
    config = {"route": ROUTE, "receivers": receivers, "inhibit_rules": INHIBIT, "time_intervals": TIME_INTERVALS}
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (tmp_path / "am.log").open("w")
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "am.log").read_text()
            assert time.monotonic() < deadline, "Alertmanager did not become ready"
            time.sleep(0.1)
        yield port, hook.RequestHandlerClass.received
    finally:
        process.terminate()
        process.wait(timeout=10)
        hook.shutdown()
        log.close()


def test_same_groups_members_and_times_as_alertmanager(alertmanager):
    port, received = alertmanager
    t0 = time.monotonic()
    wall0 = time.time()
    starts: dict[str, float] = {}
    incoming = []
    for offset_s, labels, action in SCRIPT:
        time.sleep(max(0.0, t0 + offset_s - time.monotonic()))
        sent = time.monotonic() - t0
        key = json.dumps(labels, sort_keys=True)
        if action == "fire":
            starts[key] = sent - (60 if labels is OLD else 0)
            _post(port, [{"labels": labels, "startsAt": _iso(wall0 + starts[key])}])
            incoming.append(Incoming(round(sent * 1000), labels, round(starts[key] * 1000)))
        else:
            _post(port, [{"labels": labels, "startsAt": _iso(wall0 + starts[key]), "endsAt": _iso(wall0 + sent)}])
            incoming.append(Incoming(round(sent * 1000), labels, round(starts[key] * 1000), round(sent * 1000)))
    time.sleep(max(0.0, t0 + END_S - time.monotonic()))

    policy = NotificationPolicy.model_validate(
        {"route": ROUTE, "inhibit_rules": INHIBIT, "time_intervals": TIME_INTERVALS}
    )
    ours = Dispatcher(policy).run(incoming, horizon_ms=round(END_S * 1000))

    theirs = sorted(((arrived - t0, body) for arrived, body in received), key=lambda item: item[0])
    assert len(theirs) >= 15, [(round(t, 2), b["receiver"], b["groupKey"]) for t, b in theirs]
    expected = [
        (
            n.receiver,
            n.group_key,
            n.group_labels,
            _members(
                [{"status": "firing", "labels": m["labels"]} for m in n.firing]
                + [{"status": "resolved", "labels": m["labels"]} for m in n.resolved]
            ),
        )
        for n in ours
    ]
    actual = [(b["receiver"], b["groupKey"], b["groupLabels"], _members(b["alerts"])) for _, b in theirs]
    # the same notifications: receiver, group key and labels, members and their status (in time order)
    assert sorted(map(repr, actual)) == sorted(map(repr, expected))
    pairs = {}
    for (at_s, _), item in zip(theirs, actual, strict=True):
        pairs.setdefault(repr(item), []).append(at_s)
    differences = []
    for notification, item in zip(ours, expected, strict=True):
        at_s = pairs[repr(item)].pop(0)
        differences.append(abs(at_s - notification.at_ms / 1000))
    print(
        f"\noracle: {len(ours)} notifications of {len({(n.receiver, n.group_key) for n in ours})} groups "
        f"compared; max timing difference {max(differences) * 1000:.0f} ms"
    )
    assert max(differences) < 0.5, differences
