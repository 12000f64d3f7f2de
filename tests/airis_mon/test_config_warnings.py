"""An empty or no-op config is valid but says what is missing (issue 15): ``--validate`` prints the warnings
after the ``valid`` line (exit 0); a run logs them (``warn_about``, logger ``airis_mon.config``)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from airis_mon.config import config_warnings, load_config, parse_config, warn_about

REPO = Path(__file__).resolve().parents[2]
RULE = {"name": "r", "metric": "m", "aggregation": "sum", "comparator": ">", "threshold": 1, "severity": "high"}
FILES = {"name": "files", "type": "payload_files", "paths": ["*.py"]}


def warnings_of(document: dict) -> list[str]:
    return config_warnings(parse_config(document, REPO))


def test_an_empty_config_warns_that_it_reads_nothing_and_alerts_nobody():
    warnings = warnings_of({})
    assert warnings[0].startswith("integrations: none configured: the run reads nothing; add one")
    assert "examples/integrations.yaml" in warnings[0]
    assert warnings[1].startswith("rules: none configured: nothing will alert")
    assert len(warnings) == 2


def test_rules_without_a_notification_sink_are_stored_but_notify_nobody():
    warnings = warnings_of({"integrations": [FILES], "rules": [RULE], "sinks": [{"name": "s", "type": "parquet"}]})
    assert warnings == [
        "sinks: no notification sink: alerts are stored but nobody is notified; add one (slack, pagerduty, email, "
        "notification_log ...) and route to it (routes, default_route)"
    ]


def test_a_notification_sink_nothing_routes_to_is_a_warning():
    document = {"integrations": [FILES], "rules": [RULE], "sinks": [{"name": "feed", "type": "notification_log"}]}
    [warning] = warnings_of(document)
    assert warning.startswith("routes: none configured and default_route.sinks is empty")
    assert warnings_of({**document, "default_route": {"sinks": ["feed"]}}) == []
    assert warnings_of({**document, "routes": [{"name": "all", "sinks": ["feed"]}]}) == []


def test_the_bundled_sample_config_has_no_warnings():
    assert config_warnings(load_config()) == []


def test_warn_about_logs_each_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="airis_mon.config"):
        warnings = warn_about(parse_config({}, REPO))
    assert [r.name for r in caplog.records] == ["airis_mon.config", "airis_mon.config"]
    assert [r.getMessage() for r in caplog.records] == [f"config: {w}" for w in warnings]


def test_validate_prints_the_warnings_after_valid_and_exits_0(tmp_path):
    config = tmp_path / "empty.yaml"
    config.write_text("# nothing yet\n")
    result = subprocess.run([sys.executable, "-m", "pipelines.main", "--config", str(config), "--validate"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{config}: valid (0 integrations, 0 rules, 0 sinks)"
    assert lines[1].startswith("warning: integrations: none configured: the run reads nothing")
    assert lines[2].startswith("warning: rules: none configured: nothing will alert")
    assert len(lines) == 3
    sample = subprocess.run([sys.executable, "-m", "pipelines.main", "--validate"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert sample.returncode == 0 and "warning" not in sample.stdout
