"""Every console page in a real browser: Debian's Chromium, headless, driven by Playwright.

A store of 10,000 alerts (``benchmarks.console_data``) is served by a real console on a loopback port.
The test signs in, filters the alert list, opens an alert (its chart shows the episode), acknowledges it
(the PagerDuty acknowledge then goes through the live runner's real outbox to a loopback PagerDuty receiver
that enforces the Events API v2 rules), creates and expires a silence, and opens the integration health
dashboard. Every page must render with no console error and no failed request (a Content-Security-Policy
violation is a console error), and load in under a second (median of three loads, navigation timing).

Screenshots of each page go to ``$AIRIS_SCREENSHOT_DIR`` (default: the test's temporary folder); the README
shows the ones in ``docs/screenshots/`` (refresh them with ``AIRIS_SCREENSHOT_DIR=docs/screenshots``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from pathlib import Path

import pytest

from benchmarks.console_data import store_document, write_store
from tests.console.console_server import ConsoleServer
from tests.sinks.pagerduty.receiver import PagerDutyEvents
from tests.sinks.receivers import Receiver

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

ADMIN_TOKEN = "admin-token-for-the-browser-test"
VIEWER_TOKEN = "viewer-token-for-the-browser-test"
ROUTING_KEY = "R0123456789abcdef0123456789abcdef"[:32]
LOAD_LIMIT_MS = 1000.0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(server, shape, pagerduty receiver, screenshot dir) over a store of 10,000 alerts."""
    folder = tmp_path_factory.mktemp("console-browser")
    output = folder / "out"
    shape = write_store(output, series=240, windows=360, alerts=10_000, seed=17, end_ms=int(time.time() * 1000))
    pagerduty = Receiver(PagerDutyEvents()).__enter__()
    slack = Receiver(lambda request: (200, {"Content-Type": "text/plain"}, b"ok")).__enter__()  # the store's team-slack
    os.environ["BROWSER_ADMIN"] = ADMIN_TOKEN
    os.environ["BROWSER_VIEWER"] = VIEWER_TOKEN
    os.environ["BROWSER_PD_KEY"] = ROUTING_KEY
    os.environ["BROWSER_SLACK_URL"] = f"{slack.url}/services/T0/B0/x"
    document = {
        **store_document(shape.models, shape.window_s),
        "integrations": [
            {
                "name": "api",
                "type": "gateway",
                "spool": str(folder / "spool"),
                "tokens": [{"name": "ci", "token": {"env": "BROWSER_ADMIN"}}],
            }
        ],
        "sinks": [
            {
                "name": "team-pager",
                "type": "pagerduty",
                "routing_key": {"env": "BROWSER_PD_KEY"},
                "url": f"{pagerduty.url}/v2/enqueue",
            },
            {"name": "team-slack", "type": "slack", "webhook_url": {"env": "BROWSER_SLACK_URL"}},
        ],
        "console": {
            "tokens": [
                {"name": "alice", "token": {"env": "BROWSER_ADMIN"}, "role": "admin"},
                {"name": "bob", "token": {"env": "BROWSER_VIEWER"}},
            ]
        },
    }
    server = ConsoleServer(document, output, folder)
    shots = Path(os.environ.get("AIRIS_SCREENSHOT_DIR") or folder / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    yield server, shape, pagerduty, shots
    server.close()
    pagerduty.__exit__(None, None, None)
    slack.__exit__(None, None, None)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        yield chromium
        chromium.close()


class _Watched:
    """A page whose console errors, page errors and failed requests are collected."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))

    def load_ms(self) -> float:
        timing = self.page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
        entry = json.loads(timing)
        return entry["loadEventEnd"] - entry["startTime"]

    def timed_loads(self, url: str, times: int = 3) -> list[float]:
        loads = []
        for _ in range(times):
            self.page.goto(url)
            self.page.wait_for_load_state("load")
            loads.append(self.load_ms())
        return loads

    def close(self) -> None:
        self.context.close()


def _sign_in(watched: _Watched, url: str, token: str, target: str = "/alerts") -> None:
    watched.page.goto(f"{url}{target}")
    assert "/login" in watched.page.url  # every page needs a session
    watched.page.fill("#token", token)
    watched.page.click("#login-form button[type=submit]")
    watched.page.wait_for_load_state("load")


def _figures(shots: Path, name: str, loads: list[float]) -> float:
    median = statistics.median(loads)
    print(f"page {name}: loads {', '.join(f'{ms:.0f}' for ms in loads)} ms, median {median:.0f} ms")
    with open(shots / "page-loads.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"page": name, "loads_ms": loads, "median_ms": median}) + "\n")
    return median


def test_sign_in_alert_list_filters_and_counts(world, browser):
    server, _shape, _, shots = world
    watched = _Watched(browser)
    _sign_in(watched, server.url, ADMIN_TOKEN)
    page = watched.page
    assert page.url.endswith("/alerts")
    cookies = {c["name"]: c for c in watched.context.cookies()}
    session = cookies["airis_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert ADMIN_TOKEN not in page.content()
    assert page.evaluate("document.cookie") == ""  # no script can read the session
    counts = {li.get_attribute("data-state"): int(li.locator("b").inner_text().replace(",", ""))
              for li in page.locator("#state-counts a[data-state]").all()}  # fmt: skip
    assert counts["firing"] > 0 and counts["resolved"] > 0
    assert page.locator("#alerts-table tbody tr[data-alert]").count() == 100
    median = _figures(shots, "alerts", watched.timed_loads(f"{server.url}/alerts"))
    page.screenshot(path=str(shots / "alerts.png"), full_page=False)

    page.select_option("#filter-severity", "critical")
    page.select_option("#filter-state", "firing")
    page.click("#apply-filters")
    page.wait_for_load_state("load")
    rows = page.locator("#alerts-table tbody tr[data-alert]")
    assert rows.count() > 0
    assert {r.get_attribute("data-severity") for r in rows.all()} == {"critical"}
    assert {r.get_attribute("data-state") for r in rows.all()} == {"firing"}
    team = page.locator("#filter-team option").nth(1).get_attribute("value")
    page.select_option("#filter-team", team)
    page.click("#apply-filters")
    page.wait_for_load_state("load")
    assert {r.get_attribute("data-team") for r in page.locator("#alerts-table tbody tr[data-alert]").all()} <= {team}
    assert watched.problems == []
    watched.close()
    assert median < LOAD_LIMIT_MS, f"the alert list loaded in {median:.0f} ms with 10,000 alerts"


def _firing_alert(server, shape) -> str:
    """A firing, unacknowledged episode with stored points, and a delivered PagerDuty trigger on record."""
    for alert_id in shape.consistent:  # episodes whose stored aggregates breach their rule
        if shape.states[alert_id] == "firing" and alert_id not in shape.acknowledged:
            detail = server.services.store.alert(alert_id)
            if detail is not None and detail.alert.acknowledged_by is None:
                break
    history = shape.output / "notification_history.jsonl"
    with open(history, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"key": f"{alert_id}:trigger:team-pager", "sink": "team-pager", "alert_id": alert_id,
                                 "rule": detail.alert.rule, "notification": "trigger", "outcome": "delivered",
                                 "status": 202, "attempts": 1, "retries": 0, "reason": "",
                                 "at_ms": detail.alert.starts_at_ms}) + "\n")  # fmt: skip
    server.services.store.refresh()
    return alert_id


def _breaching_points_in(page, span) -> int:
    """How many series points drawn inside ``span`` (a shaded rect) lie above the threshold line (SVG y grows
    downwards); fails when a point inside the firing span is below it."""
    threshold_y = float(page.locator("svg.episode-chart .threshold").first.get_attribute("y1"))
    left = float(span.get_attribute("x"))
    right = left + float(span.get_attribute("width"))
    points = []
    for line in page.locator("svg.episode-chart polyline.series").all():
        for pair in line.get_attribute("points").split():
            x, y = (float(v) for v in pair.split(","))
            if left <= x < right:
                points.append(y)
    assert points, "no series point inside the firing span"
    assert all(y < threshold_y for y in points), (threshold_y, points)
    return len(points)


def test_the_alert_page_charts_the_episode_and_acknowledge_round_trips(world, browser):
    server, shape, pagerduty, shots = world
    alert_id = _firing_alert(server, shape)
    watched = _Watched(browser)
    _sign_in(watched, server.url, ADMIN_TOKEN, target=f"/dashboard?alert={alert_id}")
    page = watched.page
    assert f"alert={alert_id}" in page.url  # back where the link pointed after signing in
    chart = page.locator("svg.episode-chart")
    assert chart.get_attribute("data-alert") == alert_id
    assert page.locator("svg.episode-chart .series").count() >= 1
    assert page.locator("svg.episode-chart .threshold").count() == 1
    firing = page.locator("svg.episode-chart .span.firing")
    assert firing.count() >= 1
    box = firing.first.bounding_box()
    assert box is not None and box["width"] > 0  # the episode is shaded, visibly
    assert _breaching_points_in(page, firing.first) > 0  # the series is above the threshold line in the span
    assert page.locator("#deliveries tr[data-sink=team-pager]").count() >= 1
    median = _figures(shots, "alert", watched.timed_loads(page.url))
    page.screenshot(path=str(shots / "alert.png"), full_page=True)

    page.click("#acknowledge")
    page.wait_for_load_state("load")
    assert "acknowledged by alice" in page.locator("#acknowledged").inner_text()
    assert page.locator("#acknowledge").count() == 0
    # the PagerDuty acknowledge: committed to the runner's outbox, delivered once by the real Outbox
    from pipelines.console import state_dir_of
    from pipelines.live.outbox import Outbox
    from pipelines.main import notification_sinks

    outbox = Outbox({s.name: s for s in notification_sinks(server.config, str(shape.output))},
                    state_dir_of(server.config, shape.output), shape.output)  # fmt: skip
    outbox.deliver_pending()
    sent = [json.loads(r.body) for r in pagerduty.requests]
    acks = [event for event in sent if event["event_action"] == "acknowledge"]
    assert len(acks) == 1 and acks[0]["dedup_key"] == f"airis-mon-{alert_id}"
    server.services.store.refresh()
    page.reload()
    assert page.locator("#deliveries tr[data-notification=acknowledge][data-outcome=delivered]").count() == 1
    page.screenshot(path=str(shots / "alert-acknowledged.png"), full_page=True)
    assert watched.problems == []
    watched.close()
    assert median < LOAD_LIMIT_MS, f"the alert page loaded in {median:.0f} ms"


def test_a_read_only_token_sees_but_cannot_change(world, browser):
    server, shape, _, _ = world
    alert_id = next(a for a, s in shape.states.items() if s == "firing")
    watched = _Watched(browser)
    _sign_in(watched, server.url, VIEWER_TOKEN, target=f"/dashboard?alert={alert_id}")
    page = watched.page
    assert page.locator("svg.episode-chart").count() == 1
    assert page.locator("#acknowledge").count() == 0
    assert page.locator("#signed-in-as").inner_text() == "bob (read)"
    page.goto(f"{server.url}/silences")
    assert page.locator("#silence-form").count() == 0
    assert watched.problems == []
    watched.close()


def test_silences_are_created_and_expired_from_the_page(world, browser):
    server, shape, _, shots = world
    alert_id = next(a for a, s in shape.states.items() if s == "firing")
    watched = _Watched(browser)
    _sign_in(watched, server.url, ADMIN_TOKEN, target=f"/dashboard?alert={alert_id}")
    page = watched.page
    page.click("#silence-this")
    page.wait_for_load_state("load")
    assert page.url.split("?")[0].endswith("/silences")
    assert 'rule="' in page.input_value("#matchers")  # prefilled from the alert
    page.fill("#duration", "90m")
    page.fill("#comment", "browser test: maintenance")
    page.click("#create-silence")
    page.wait_for_load_state("load")
    row = page.locator("#silences tr[data-state=active]", has_text="browser test: maintenance")
    assert row.count() == 1
    silence_id = row.get_attribute("data-silence")
    stored = server.services.silences.get(silence_id)
    assert stored is not None and stored.created_by == "alice"
    assert stored.ends_at - stored.starts_at == 90 * 60_000
    _figures(shots, "silences", watched.timed_loads(f"{server.url}/silences"))
    page.screenshot(path=str(shots / "silences.png"), full_page=True)
    page.locator(f"#silences tr[data-silence='{silence_id}'] button.expire").click()
    page.wait_for_load_state("load")
    assert page.locator(f"#silences tr[data-silence='{silence_id}']").get_attribute("data-state") == "expired"
    assert watched.problems == []
    watched.close()


def test_the_integration_health_dashboard(world, browser):
    server, _, _, shots = world
    watched = _Watched(browser)
    _sign_in(watched, server.url, ADMIN_TOKEN, target="/integrations")
    page = watched.page
    assert page.locator("#overall-status").inner_text() == "degraded"
    statuses = {r.get_attribute("data-integration"): r.get_attribute("data-status")
                for r in page.locator("#integrations tbody tr[data-integration]").all()}  # fmt: skip
    assert statuses["github"] == "degraded" and statuses["mlflow"] == "healthy" and statuses["ldap"] == "stale"
    github = page.locator("#integrations tr[data-integration=github] .failure")
    assert github.count() >= 1
    median = _figures(shots, "integrations", watched.timed_loads(page.url))
    page.screenshot(path=str(shots / "integrations.png"), full_page=True)
    assert watched.problems == []
    watched.close()
    assert median < LOAD_LIMIT_MS
