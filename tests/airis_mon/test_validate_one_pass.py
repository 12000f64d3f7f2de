"""``python -m pipelines.main --config F --validate`` reports every problem in one pass (issue 15): each
section, entry, model rule and cross-section check is checked whatever else failed, so fixing what one pass
reports leaves nothing for a second pass to find. A component whose extra is missing is one problem."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airis_mon.config import load_config
from airis_mon.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

#: Problems of every stage: unknown keys, field errors, model rules of an entry whose fields failed (and of
#: one whose first rule failed), unknown types, secrets, list entries beside a bad one, cross-section checks
#: (rule windows while aggregation failed, route and owner sinks while sinks and routes failed).
BROKEN = """
colour: red
aggregation:
  window_seconds: 60
  allowed_lateness: soon
live:
  metrics_port: 99999
integrations:
  - name: api
    type: gateway
    spool: ./spool
    port: not-a-port
    handoff: pubsub
    dedup_window_s: 10
    webhook_tolerance_s: 300
  - name: stream
    type: kafka
rules:
  - {name: r-window, metric: m, aggregation: sum, comparator: ">", threshold: 1, severity: high, window: 90s}
  - {name: r-bad, metric: m, aggregation: sum, comparator: ">", threshold: lots, severity: high, window: 150s}
  - {name: r-window, metric: m, aggregation: sum, comparator: ">", threshold: 1, severity: loud}
sinks:
  - {name: feed, type: notification_log}
  - {name: chat, type: slack, webhook_url: {env: AIRIS_ONE_PASS_UNSET_WEBHOOK}}
silences:
  - {name: broken, matchers: {}, starts_at: "2026-01-01T00:00:00Z", ends_at: "2026-01-02T00:00:00Z"}
  - {name: backwards, matchers: {a: b}, starts_at: "2026-01-02T00:00:00Z", ends_at: "2026-01-01T00:00:00Z"}
routes:
  - {name: no-sinks, sinks: []}
  - {name: wrong, sinks: [nowhere]}
default_route: {sinks: [feed, chat, elsewhere]}
enrichment:
  lookback: later
  ownership:
    - {model: fraud, pagerduty: pd-missing}
    - {model: other, aliases: [fraud]}
"""

#: Each problem of BROKEN: its path and what the message must say.
EXPECTED = [
    ("colour", "Extra inputs are not permitted"),
    ("aggregation.allowed_lateness", "a duration is"),
    ("live.metrics_port", "less than or equal to 65535"),
    ("integrations[0].port", "valid integer"),
    ("integrations[0]", "handoff pubsub needs pubsub_topic"),
    ("integrations[0]", "dedup_window_s must be at least 2 * webhook_tolerance_s"),
    ("integrations[1].type", "unknown source type"),
    ("rules[0].window", "whole multiple of aggregation.window_seconds (rule 'r-window')"),
    ("rules[1].threshold", "valid number"),
    ("rules[1].window", "whole multiple of aggregation.window_seconds (rule 'r-bad')"),
    ("rules[2].name", "duplicate name 'r-window' in rules"),
    ("rules[2].severity", "Input should be"),
    ("sinks[1].webhook_url", "environment variable AIRIS_ONE_PASS_UNSET_WEBHOOK is not set"),
    ("silences[0].matchers", "at least 1 item"),
    ("silences[1]", "ends_at must be after starts_at"),
    ("routes[0].sinks", "at least 1 item"),
    ("routes[1].sinks[0]", "names no notification sink (known: feed)"),
    ("default_route.sinks[2]", "names no notification sink (known: feed)"),
    ("enrichment.lookback", "a duration is"),
    ("enrichment", "is owned twice"),
    ("enrichment.ownership[0].pagerduty", "names no pagerduty sink"),
]

#: BROKEN with every reported problem fixed, and nothing else changed.
FIXED = """
aggregation:
  window_seconds: 60
  allowed_lateness: 15m
live:
  metrics_port: 9464
integrations:
  - name: api
    type: gateway
    spool: ./spool
    port: 8080
    handoff: pubsub
    pubsub_topic: projects/my-project/topics/airis
    dedup_window_s: 600
    webhook_tolerance_s: 300
rules:
  - {name: r-window, metric: m, aggregation: sum, comparator: ">", threshold: 1, severity: high, window: 120s}
  - {name: r-bad, metric: m, aggregation: sum, comparator: ">", threshold: 5, severity: high, window: 180s}
  - {name: r-third, metric: m, aggregation: sum, comparator: ">", threshold: 1, severity: warning}
sinks:
  - {name: feed, type: notification_log}
  - {name: chat, type: slack, webhook_url: {env: AIRIS_ONE_PASS_SET_WEBHOOK}}
silences:
  - {name: broken, matchers: {a: b}, starts_at: "2026-01-01T00:00:00Z", ends_at: "2026-01-02T00:00:00Z"}
  - {name: backwards, matchers: {a: b}, starts_at: "2026-01-01T00:00:00Z", ends_at: "2026-01-02T00:00:00Z"}
routes:
  - {name: no-sinks, sinks: [feed]}
  - {name: wrong, sinks: [chat]}
default_route: {sinks: [feed, chat]}
enrichment:
  lookback: 6h
  ownership:
    - {model: fraud}
    - {model: other, aliases: [fraud-v2]}
"""


def validate(config: Path, prelude: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m pipelines.main --config CONFIG --validate`` in a new process (``prelude``: Python run first)."""
    code = f"{prelude}\nimport runpy, sys\nsys.argv = ['pipelines.main', '--config', {str(config)!r}, '--validate']\n"
    code += "runpy.run_module('pipelines.main', run_name='__main__', alter_sys=True)\n"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AIRIS_ONE_PASS_")}
    environment.update({"PYTHONPATH": str(REPO), **(env or {})})
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def problem_lines(stderr: str) -> list[str]:
    return [line[len("  - ") :] for line in stderr.splitlines() if line.startswith("  - ")]


def test_one_validate_pass_lists_every_problem_with_its_path(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text(BROKEN)
    result = validate(config)
    assert result.returncode == 2, result.stderr
    lines = problem_lines(result.stderr)
    for path, says in EXPECTED:
        assert any(line.startswith(f"{path}: ") and says in line for line in lines), (path, says, lines)
    assert len(lines) == len(EXPECTED), lines
    assert f"{len(EXPECTED)} configuration error(s)" in result.stderr


def test_fixing_what_one_pass_reported_leaves_nothing_for_a_second(tmp_path):
    config = tmp_path / "fixed.yaml"
    config.write_text(FIXED)
    result = validate(config, env={"AIRIS_ONE_PASS_SET_WEBHOOK": "https://hooks.slack.com/services/T/B/X"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{config}: valid (1 integrations, 3 rules, 2 sinks)")


def test_the_storage_output_is_checked_with_the_rest(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("aggregation: {window_seconds: 0}\nsinks: [{name: storage, type: parquet}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config, output="gs://bucket/out")
    assert [p.split(":")[0] for p in caught.value.problems] == ["aggregation.window_seconds", "sinks"]
    assert "Parquet storage writes local files" in caught.value.problems[1]
    config.write_text("sinks: [{name: storage, type: parquet, path: ./out}]\n")
    assert load_config(config, output="gs://bucket/out").sinks[0].name == "storage"


#: Refuses to import ``ldap3``, as an install without the ``ldap`` extra does.
WITHOUT_LDAP3 = """
import importlib.abc, sys
class _NoLdap3(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "ldap3" or name.startswith("ldap3."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoLdap3())
"""


def test_a_component_whose_extra_is_missing_is_one_problem(tmp_path):
    config = tmp_path / "ldap.yaml"
    config.write_text(
        textwrap.dedent("""
        integrations:
          - {name: files, type: payload_files, paths: [missing-*.jsonl]}
          - name: corp
            type: ldap
            url: not-a-url
            bind_password: {env: AIRIS_ONE_PASS_UNSET}
            page_size: many
        rules:
          - {name: r, metric: m, aggregation: sum, comparator: ">", threshold: x, severity: high}
    """)
    )
    result = validate(config, WITHOUT_LDAP3)
    assert result.returncode == 2, result.stderr
    lines = problem_lines(result.stderr)
    assert """integrations[1].type: 'ldap' needs the 'ldap' extra: pip install -e ".[ldap]" (integration 'corp')""" in (
        lines
    )
    assert not [line for line in lines if line.startswith("integrations[1]") and "extra" not in line], lines
    assert any(line.startswith("integrations[0].paths: ") for line in lines), lines
    assert any(line.startswith("rules[0].threshold: ") for line in lines), lines
    assert "Traceback" not in result.stderr


def test_with_the_extra_installed_the_entry_is_validated(tmp_path):
    pytest.importorskip("ldap3")
    config = tmp_path / "ldap.yaml"
    config.write_text("integrations:\n  - {name: corp, type: ldap, url: ldaps://dc.example.com, page_size: many}\n")
    result = validate(config)
    assert result.returncode == 2
    lines = problem_lines(result.stderr)
    assert any(line.startswith("integrations[0].page_size: ") for line in lines), lines
    assert not any("extra" in line for line in lines), lines
