"""deploy/: the Dockerfile, compose.yaml and example config of the continuous runner, checked offline.

Docker is not needed: the compose file and the Dockerfile are parsed and checked against the repository
(setup.py's extras, the ``pipelines.serve`` module and its options, the example config's ports), and the
example config is run once for real with ``python -m pipelines.serve --once`` outside a container (on
loopback, with its spool and ports moved to the test's folder).
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from airis_mon.config import load_config
from airis_mon.errors import ConfigError
from pipelines.serve import _parse_args
from sinks.notification_log.config import NotificationLogConfig
from sinks.parquet.config import ParquetSinkConfig
from sources.gateway.config import GatewayConfig
from sources.gateway.spool import SpoolWriter
from transforms.rules.config import ThresholdRule

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
EXAMPLE = DEPLOY / "airis-mon.yaml"
TOKEN = "deploy-test-token"
CONSOLE_TOKEN = "deploy-test-console-token"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _service() -> dict:
    return _compose()["services"]["airis-mon"]


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def _setup_py() -> tuple[list[str], dict[str, list[str]]]:
    """(CORE, EXTRAS) of setup.py, read from its syntax tree (``all`` is the union, as setup.py builds it)."""
    core, extras = [], {}
    for node in ast.parse((REPO / "setup.py").read_text()).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "CORE":
            core = ast.literal_eval(node.value)
        elif isinstance(target, ast.Name) and target.id == "EXTRAS":
            extras = ast.literal_eval(node.value)
        elif isinstance(target, ast.Subscript) and getattr(target.value, "id", "") == "EXTRAS":
            name = ast.literal_eval(target.slice)
            try:
                extras[name] = ast.literal_eval(node.value)
            except ValueError:  # EXTRAS["all"]: computed from the others
                extras[name] = sorted({req for reqs in list(extras.values()) for req in reqs})
    assert core and extras, "setup.py no longer defines CORE and EXTRAS as literals"
    return core, extras


def _project(requirement: str) -> str:
    """The normalized project name of a requirement string (``apache-beam[gcp]>=2`` -> ``apache-beam``)."""
    name = requirement
    for stop in "[<>=!~; ":
        name = name.split(stop, 1)[0]
    return name.strip().lower().replace("_", "-")


def _ports() -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of every published port."""
    out = []
    for entry in _service()["ports"]:
        assert isinstance(entry, str), "ports are written as HOST_IP:HOST_PORT:CONTAINER_PORT strings"
        host, host_port, container_port = entry.rsplit(":", 2)
        out.append((host, int(host_port), int(container_port)))
    return out


def _cmd() -> list[str]:
    cmds = [args for instruction, args in _instructions() if instruction == "CMD"]
    assert len(cmds) == 1
    return json.loads(cmds[0])  # the exec form: SIGTERM reaches python itself, not a shell


def _example_config(monkeypatch):
    monkeypatch.setenv("AIRIS_TOKEN", TOKEN)
    monkeypatch.setenv("AIRIS_CONSOLE_TOKEN", CONSOLE_TOKEN)
    return load_config(EXAMPLE)


# --- compose.yaml --------------------------------------------------------------------------------------------


def test_compose_builds_the_dockerfile_from_the_repository():
    build = _service()["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert (DEPLOY / "Dockerfile").is_file()


def test_compose_runs_it_as_a_service_that_stops_cleanly_and_restarts():
    service = _service()
    assert service["stop_signal"] == "SIGTERM"
    assert service["stop_grace_period"] == "30s"
    assert service["restart"] == "unless-stopped"
    assert service["init"] is True  # the gateway child is reaped; SIGTERM is forwarded to pipelines.serve


def test_compose_publishes_ports_on_loopback_only():
    ports = _ports()
    assert ports and all(host == "127.0.0.1" for host, _, _ in ports)


def test_compose_mounts_the_config_read_only_and_a_named_volume_for_data():
    compose = _compose()
    mounts = [entry.split(":") for entry in _service()["volumes"]]
    config_mounts = [m for m in mounts if m[1].startswith("/config")]
    assert len(config_mounts) == 1
    source, target, mode = config_mounts[0]
    assert (DEPLOY / source).resolve() == EXAMPLE and target == "/config/airis-mon.yaml" and mode == "ro"
    data = [m for m in mounts if m[1] == "/data"]
    assert len(data) == 1 and data[0][0] in compose["volumes"]  # a named volume, not a host folder
    assert not data[0][0].startswith((".", "/"))
    assert _parse_args(_cmd()[3:]).config == target  # the CMD reads the mounted file


def test_secrets_come_from_an_env_file_that_is_never_committed_nor_built_into_the_image():
    assert _service()["env_file"] == ".env"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(DEPLOY / ".env")], cwd=REPO, check=False)
    assert ignored.returncode == 0, "deploy/.env is not git-ignored"
    assert "**/.env" in (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    # every {env: VAR} of the example config is in the example env file the README tells to copy
    raw = yaml.safe_load(EXAMPLE.read_text())
    wanted = set()

    def collect(node) -> None:
        if isinstance(node, dict):
            if set(node) == {"env"}:
                wanted.add(node["env"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(raw)
    example_env = (DEPLOY / ".env.example").read_text().splitlines()
    offered = {line.split("=", 1)[0] for line in example_env if "=" in line and not line.startswith("#")}
    assert wanted == offered == {"AIRIS_TOKEN", "AIRIS_CONSOLE_TOKEN"}


# --- Dockerfile ----------------------------------------------------------------------------------------------


def test_dockerfile_installs_existing_extras_in_one_resolver_call():
    instructions = _instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    installs = [args for instruction, args in instructions if instruction == "RUN" and "pip install" in args]
    assert len(installs) == 1, "one pip call keeps protobuf<7 in the same resolver decision as apache-beam"
    words = shlex.split(installs[0])
    spec = words[words.index("install") + 1 :]
    assert len(spec) == 1 and spec[0].startswith(".[") and spec[0].endswith("]"), spec
    extras_text = spec[0][2:-1]
    if extras_text == "${EXTRAS}":  # the build argument's default
        args = dict(a.split("=", 1) for i, a in instructions if i == "ARG" and "=" in a)
        extras_text = args["EXTRAS"]
    chosen = extras_text.split(",")
    core, extras = _setup_py()
    assert set(chosen) <= set(extras), f"unknown extras {set(chosen) - set(extras)}"
    installed = {_project(r) for r in core} | {_project(r) for name in chosen for r in extras[name]}
    # what `python -m pipelines.serve` imports beyond the core: the gateway's server and /metrics' client
    assert {"fastapi", "uvicorn", "prometheus-client"} <= installed
    assert any(_project(r) == "protobuf" and "<7" in r for r in core)


def test_dockerfile_runs_as_a_non_root_user_with_data_on_a_volume():
    instructions = _instructions()
    users = [(index, args) for index, (i, args) in enumerate(instructions) if i == "USER"]
    assert users, "no USER: the container would run as root"
    index, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    cmd_index = next(index for index, (i, _) in enumerate(instructions) if i == "CMD")
    assert index < cmd_index
    assert ("VOLUME", '["/data"]') in instructions


def test_the_cmd_runs_pipelines_serve_with_its_options():
    cmd = _cmd()
    assert cmd[:3] == ["python", "-m", "pipelines.serve"]
    assert (REPO / "pipelines" / "serve.py").is_file()
    args = _parse_args(cmd[3:])  # the module's own parser accepts every option
    assert (args.config, args.output, args.once) == ("/config/airis-mon.yaml", "/data/out", False)


# --- the example config --------------------------------------------------------------------------------------


def test_example_config_validates_and_matches_the_published_ports(monkeypatch):
    config = _example_config(monkeypatch)
    gateways = [i for i in config.integrations if isinstance(i, GatewayConfig)]
    assert len(gateways) == 1
    gateway = gateways[0]
    assert (gateway.host, gateway.handoff, gateway.max_segment_age_s) == ("0.0.0.0", "spool", 2)
    assert gateway.max_segment_age_s <= config.live.cycle_interval_s
    assert [t.token.get_secret_value() for t in gateway.tokens] == [TOKEN]
    assert Path(gateway.spool).is_relative_to("/data")  # on the volume; /config is read-only
    assert config.live.metrics_host == "0.0.0.0"
    container_ports = sorted(container for _, _, container in _ports())
    assert (
        container_ports == sorted([gateway.port, config.console.port, config.live.metrics_port]) == [8080, 8090, 9464]
    )
    assert config.console.host == "0.0.0.0" and [t.role for t in config.console.tokens] == ["admin"]
    assert f":{config.live.metrics_port}/metrics" in " ".join(_service()["healthcheck"]["test"])
    assert [type(r) for r in config.rules] == [ThresholdRule]
    storage = [s for s in config.sinks if isinstance(s, ParquetSinkConfig)]
    assert len(storage) == 1 and storage[0].path is None  # --output: /data/out in the container
    assert config.live.state_dir is None  # OUTPUT/state: on the volume too
    logs = [s for s in config.sinks if isinstance(s, NotificationLogConfig)]
    assert len(logs) == 1 and config.default_route.sinks == [logs[0].name]


def test_example_config_refuses_to_load_without_its_secret(monkeypatch):
    monkeypatch.delenv("AIRIS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="AIRIS_TOKEN"):
        load_config(EXAMPLE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_example_config_runs_once_outside_the_container(tmp_path):
    """``python -m pipelines.serve --once`` on the example: the gateway starts, one cycle reads the spool."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    gateway = raw["integrations"][0]
    gateway.update(host="127.0.0.1", port=_free_port(), spool=str(tmp_path / "spool"))  # loopback, the test's folder
    raw["live"].update(metrics_host="127.0.0.1", metrics_port=0)
    raw["console"].update(host="127.0.0.1", port=_free_port())
    config_path = tmp_path / "airis-mon.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    writer = SpoolWriter(tmp_path / "spool")
    latency = {"name": "inference_latency", "value": 420.0, "unit": "ms", "tags": {"model_name": "fraud"}}
    point = {"timestamp": 1_796_000_000_000, "source": "tensorflow_serving", "metrics": [latency]}  # 2026-11-30
    writer.append([point, {**point, "timestamp": point["timestamp"] + 1000}])
    writer.close()
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.serve", "--config", str(config_path), "--once", "--output", str(out)],
        cwd=REPO, env={**os.environ, "AIRIS_TOKEN": TOKEN, "AIRIS_CONSOLE_TOKEN": CONSOLE_TOKEN}, capture_output=True,
        text=True, timeout=240,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"gateway api ready at http://127.0.0.1:{gateway['port']}" in result.stderr
    assert f"console ready at http://127.0.0.1:{raw['console']['port']}" in result.stderr
    assert json.loads((out / "state" / "checkpoint.json").read_text())["cycle"] == 1
    assert not list((tmp_path / "spool").glob("segment-*.jsonl"))  # read and moved to done/
    metrics = pq.read_table(out / "metrics").to_pylist()
    assert [m["value"] for m in metrics if m["name"] == "inference_latency"] == [420.0, 420.0]
