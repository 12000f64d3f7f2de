import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from airis_mon.config import SAMPLE_CONFIG_PATH, StrictModel, load_config
from airis_mon.errors import ConfigError
from airis_mon.secrets import Secret

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "d.jsonl").write_text("{}\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_the_bundled_sample_config_is_valid():
    config = load_config(None)
    assert config == load_config(SAMPLE_CONFIG_PATH)
    assert [i.type for i in config.integrations] == ["payload_files"]
    assert {r.name for r in config.rules} == {
        "model_p95_latency_high",
        "endpoint_5xx_burst",
        "sagemaker_endpoint_silent",
        "integration_failing",
    }
    assert [r.name for r in config.routes] == ["page-on-call", "everything-to-the-team-feed"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    config = load_config(write(tmp_path, "integrations: [{name: a, type: payload_files, paths: [d.jsonl]}]"))
    assert config.integrations[0].files() == [str(tmp_path / "d.jsonl")]


def test_every_error_is_reported_at_once_with_its_path(tmp_path):
    path = write(
        tmp_path,
        """
integrations:
  - {name: a, type: payload_files, paths: [d.jsonl], colour: red}
  - {name: b, type: nosuch}
  - {name: c, type: payload_files, paths: [missing-*.jsonl]}
aggregation: {window_seconds: "sixty"}
rules:
  - {name: r1, metric: m, aggregation: p42, comparator: ">", threshold: 1, severity: high}
  - {name: r2, metric: m, aggregation: sum, comparator: ">", severity: high}
""",
    )
    problems = problems_of(path)
    assert "aggregation.window_seconds: Input should be a valid integer, unable to parse string as an integer" in (
        problems
    )
    assert "integrations[0].colour: Extra inputs are not permitted (integration 'a')" in problems
    assert any(p.startswith("integrations[1].type: unknown source type (known: ") for p in problems)
    assert any(p.startswith("integrations[2].paths: Value error, no file matches") for p in problems)
    assert any(p.startswith("rules[0].aggregation: Input should be 'count'") for p in problems)
    assert "rules[1].threshold: Field required (rule 'r2')" in problems
    assert len(problems) == 6


def test_unknown_top_level_section_and_duplicate_names(tmp_path):
    assert problems_of(write(tmp_path, "integration: []")) == ["integration: Extra inputs are not permitted"]
    assert problems_of(write(tmp_path, "rules: {name: r}")) == ["rules: Input should be a valid list"]
    path = write(
        tmp_path,
        "integrations: [{name: a, type: payload_files, paths: [d.jsonl]},"
        " {name: a, type: payload_files, paths: [d.jsonl]}]",
    )
    assert problems_of(path) == ["integrations[1].name: duplicate name 'a' in integrations"]


def test_invalid_yaml_names_the_line(tmp_path):
    problems = problems_of(write(tmp_path, "rules:\n  - {name: a\n"))
    assert problems[0].startswith("line 3, column 1: invalid YAML")


class _NeedsToken(StrictModel):
    token: Secret


def test_secrets_come_from_env_or_file_and_never_print(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRIS_TEST_TOKEN", "s3cr3t-from-env")
    from_env = _NeedsToken.model_validate({"token": {"env": "AIRIS_TEST_TOKEN"}})
    assert from_env.token.get_secret_value() == "s3cr3t-from-env"
    assert "s3cr3t" not in repr(from_env) and "s3cr3t" not in str(from_env.token)
    secret_file = tmp_path / "token"
    secret_file.write_text("s3cr3t-from-file\n")
    assert _NeedsToken.model_validate({"token": {"file": str(secret_file)}}).token == SecretStr("s3cr3t-from-file")


def test_secret_literals_and_unset_variables_are_errors_without_the_value(monkeypatch):
    monkeypatch.delenv("AIRIS_UNSET", raising=False)
    for reference, message in (
        ("literal-s3cr3t", "not a literal value"),
        ({"env": "AIRIS_UNSET"}, "environment variable AIRIS_UNSET is not set"),
        ({"file": "/nonexistent/secret"}, "cannot read secret file"),
    ):
        with pytest.raises(ValueError, match=message) as caught:
            _NeedsToken.model_validate({"token": reference})
        assert "s3cr3t" not in str(caught.value)


def run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.main", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_validate_exits_zero_for_a_valid_config():
    result = run_main("--validate")
    assert result.returncode == 0, result.stderr
    assert "valid (1 integrations, 4 rules, 3 sinks)" in result.stdout


def test_validate_exits_non_zero_listing_every_error(tmp_path):
    path = write(
        tmp_path,
        "integrations: [{name: a, type: payload_files, paths: [d.jsonl], x: 1}]\nrules: [{name: r, metric: m}]",
    )
    result = run_main("--config", str(path), "--validate")
    assert result.returncode == 2
    assert "5 configuration error(s)" in result.stderr
    for expected in (
        "integrations[0].x: Extra inputs are not permitted",
        "rules[0].aggregation: Field required",
        "rules[0].comparator: Field required",
        "rules[0].threshold: Field required",
        "rules[0].severity: Field required",
    ):
        assert expected in result.stderr


def test_the_example_config_with_every_source_is_valid(monkeypatch):
    monkeypatch.setenv("AIRIS_TOKEN_CI", "example-token")
    monkeypatch.setenv("LDAP_BIND_PASSWORD", "example-password")
    config = load_config(REPO / "examples" / "integrations.yaml")
    types = {integration.type for integration in config.integrations}
    from airis_mon.registry import known_types

    assert types == set(known_types("source"))  # the README's example shows every source
