"""The core install (``pip install -e .``, no extras): every entry point's ``--help`` works, and a command that
needs an extra stops with one line naming it, never a traceback.

The environment is real: a virtualenv with only the core requirements, built once per session (about 30 s
with pip's cache) unless ``AIRIS_CORE_PYTHON`` names the python of one built before (``.ci/run`` builds
``.venv-core``).
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from airis_mon.extras import COMMAND_EXTRAS, EXIT_MISSING_EXTRA, EXTRA_MODULES, install_hint

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "integrations.yaml"


@pytest.fixture(scope="session")
def core_python(tmp_path_factory) -> Path:
    """A python whose environment has the core requirements only."""
    given = os.environ.get("AIRIS_CORE_PYTHON")
    if given:
        return Path(given)
    folder = tmp_path_factory.mktemp("core-venv")
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", str(REPO)],
                   check=True, timeout=900)  # fmt: skip
    return python


def _run(python: Path, *args: str, cwd: Path = REPO, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def test_the_core_environment_lacks_every_extra(core_python):
    """Guards the other tests: they prove nothing if the extras leaked into the core environment."""
    probe = "import json; from airis_mon.extras import EXTRA_MODULES, missing_extras; " \
        "print(json.dumps(missing_extras(EXTRA_MODULES)))"  # fmt: skip
    found = _run(core_python, "-c", probe)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == sorted(EXTRA_MODULES), "an extra leaked into the core environment"
    assert _run(core_python, "-c", "import apache_beam, pydantic, pyarrow").returncode == 0


@pytest.mark.parametrize("command", sorted(COMMAND_EXTRAS))
def test_help_from_the_core_install(core_python, command):
    result = _run(core_python, "-m", command, "--help")
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == EXIT_MISSING_EXTRA:  # a script whose own imports need the extra
        assert COMMAND_EXTRAS[command], f"{command} needs no extra but refused to run: {result.stderr}"
        assert result.stderr.strip().splitlines() == [
            f"python -m {command} needs the "
            + ", ".join(f"'{e}'" for e in sorted(COMMAND_EXTRAS[command]))
            + f" extra{'s' if len(COMMAND_EXTRAS[command]) > 1 else ''}: {install_hint(COMMAND_EXTRAS[command])}"
        ]
        return
    assert result.returncode == 0, result.stderr
    launcher = command == "templates.launch"  # the flex template launcher: the main job's options
    assert f"usage: python -m {'pipelines.main' if launcher else command}" in result.stdout
    if COMMAND_EXTRAS[command] and not launcher:
        assert install_hint(COMMAND_EXTRAS[command]) in " ".join(result.stdout.split()), "help names the extra"


MISSING_EXTRA_RUNS = {
    "pipelines.gateway": ["--config", str(EXAMPLES)],
    "pipelines.backfill": [
        "--config",
        str(EXAMPLES),
        "--start",
        "2026-11-01T00:00:00Z",
        "--end",
        "2026-11-02T00:00:00Z",
    ],
    "pipelines.serve": ["--config", str(REPO / "airis_mon" / "sample_data" / "sample_config.yaml"), "--once"],
    "pipelines.console": ["--config", str(EXAMPLES)],
    "benchmarks.console": ["--smoke"],
    "benchmarks.gateway": ["--smoke"],
    "benchmarks.live": ["--duration", "5"],
    "benchmarks.backfill": ["--points", "1000"],
}


@pytest.mark.parametrize("command", sorted(MISSING_EXTRA_RUNS))
def test_a_run_without_its_extra_is_one_line(core_python, command, tmp_path):
    benchmark = command.startswith("benchmarks.")  # benchmarks/ is not installed: it runs from the checkout
    result = _run(core_python, "-m", command, *MISSING_EXTRA_RUNS[command], cwd=REPO if benchmark else tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == EXIT_MISSING_EXTRA, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"python -m {command} needs the ")
    assert install_hint(COMMAND_EXTRAS[command]) in lines[0]
    assert not list(tmp_path.iterdir()), "nothing is written before the check"


def test_every_command_with_an_extra_has_a_run_here():
    assert {c for c, extras in COMMAND_EXTRAS.items() if extras} - {"templates.launch"} == set(MISSING_EXTRA_RUNS)


def test_the_quick_start_runs_on_the_core_install(core_python, tmp_path):
    """The README's first command: the main job on the bundled sample, from ``pip install -e .`` alone."""
    result = _run(core_python, "-m", "pipelines.main", "--runner", "DirectRunner", "--output", str(tmp_path / "out"),
                  timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "AIRIS-MON run summary" in result.stdout
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out" / "health_report.json").is_file()


def test_validating_a_config_that_needs_extras_names_them(core_python):
    """``--validate`` of the example config (every integration) lists each missing extra, no traceback."""
    result = _run(core_python, "-m", "pipelines.main", "--config", str(EXAMPLES), "--validate")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stdout + result.stderr
    for extra in ("aws", "ldap", "mlflow", "github", "kubeflow", "prometheus", "tfserving", "gcp"):
        assert f'pip install -e ".[{extra}]"' in result.stderr, (extra, result.stderr)
