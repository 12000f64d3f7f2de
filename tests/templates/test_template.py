"""The Dataflow flex template: metadata.json against the job's options parser, the README's commands,
the Dockerfile against setup.py, and the launcher entry run as Dataflow runs it (a subprocess).

No Docker and no Google Cloud here: the image is checked by reading the Dockerfile.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import apache_beam
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from setuptools import find_packages

from pipelines.main import parse_args
from templates import make_metadata
from templates.make_metadata import MetadataError, ParameterUi, build_metadata, option_actions, render

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
METADATA = json.loads((TEMPLATES / "metadata.json").read_text(encoding="utf-8"))
PARAMETERS = {p["name"]: p for p in METADATA["parameters"]}
ACTIONS = {action.dest: action for action in option_actions()}


# --- helpers: the README's shell examples, the Dockerfile, setup.py -----------------------------------------------


def readme_exports() -> dict[str, str]:
    """``export NAME=value`` lines of templates/README.md."""
    text = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^export (\w+)=(\S+)$", text, flags=re.MULTILINE))


def expand(value: str, variables: dict[str, str]) -> str:
    """Expand ``$NAME`` / ``${NAME}`` until nothing is left to expand."""
    for _ in range(10):
        expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), value)
        if expanded == value:
            return value
        value = expanded
    return value


def readme_parameters() -> list[tuple[str, str]]:
    """Every ``--parameters NAME=VALUE`` of the README's run commands, shell variables expanded."""
    text = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    variables = readme_exports()
    return [(name, expand(value, variables)) for name, value in re.findall(r"--parameters[ =](\w+)=(\S+)", text)]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of templates/Dockerfile: comments dropped, continuation lines joined."""
    instructions, pending = [], ""
    for raw in (TEMPLATES / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def docker_args() -> dict[str, str]:
    """The default of every ``ARG NAME=value``."""
    return dict(arguments.split("=", 1) for keyword, arguments in dockerfile() if keyword == "ARG" and "=" in arguments)


def docker_expand(value: str) -> str:
    return expand(value, docker_args())


def setup_py() -> ast.Module:
    return ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))


def setup_literal(name: str):
    """The literal assigned to a top-level name of setup.py (``CORE``, ``EXTRAS``)."""
    for node in setup_py().body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py assigns no {name}")


def setup_extras() -> set[str]:
    """Every extra setup.py defines, including the computed ones (``EXTRAS["all"] = ...``)."""
    names = set(setup_literal("EXTRAS"))
    for node in setup_py().body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and getattr(target.value, "id", "") == "EXTRAS":
                    names.add(ast.literal_eval(target.slice))
    return names


def setup_beam_specifiers() -> list[SpecifierSet]:
    """The apache-beam specifier of every requirement in setup.py's CORE and EXTRAS."""
    requirements = [*setup_literal("CORE"), *(r for reqs in setup_literal("EXTRAS").values() for r in reqs)]
    return [Requirement(r).specifier for r in requirements if Requirement(r).name == "apache-beam"]


def setup_packages() -> set[str]:
    """Top-level packages of the distribution: setup.py's own find_packages(exclude=...) call, evaluated."""
    for node in ast.walk(setup_py()):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "find_packages":
            exclude = next(ast.literal_eval(k.value) for k in node.keywords if k.arg == "exclude")
            return {p.split(".")[0] for p in find_packages(str(ROOT), exclude=exclude)}
    raise AssertionError("setup.py does not call find_packages")


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


# --- metadata.json and the options parser ----------------------------------------------------------------------------


def test_metadata_header_declares_a_streaming_template():
    assert METADATA["name"] == "AIRIS-MON"
    assert "YAML config" in METADATA["description"]
    assert METADATA["streaming"] is True
    assert list(METADATA) == ["name", "description", "streaming", "parameters"]


def test_every_option_is_a_parameter_and_every_parameter_an_option():
    assert list(PARAMETERS) == list(ACTIONS) == ["config", "output", "num_shards"]
    for name, parameter in PARAMETERS.items():
        action = ACTIONS[name]
        assert set(parameter) == {"name", "label", "helpText", "isOptional", "regexes"}
        assert parameter["helpText"] == action.help
        assert parameter["isOptional"] is (not action.required)
        assert parameter["label"].strip()
        assert f"--{name}" in action.option_strings  # the launcher passes --NAME=VALUE


def test_options_are_optional_because_each_has_a_default_and_none_is_required():
    assert {name: (a.required, a.default) for name, a in ACTIONS.items()} == {
        "config": (False, None),
        "output": (False, "./airis-mon-output"),
        "num_shards": (False, 16),
    }
    assert all(p["isOptional"] is True for p in PARAMETERS.values())


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_regexes_compile_are_anchored_and_accept_the_default(name):
    default = ACTIONS[name].default
    for regex in PARAMETERS[name]["regexes"]:
        assert regex.startswith("^") and regex.endswith("$"), regex
        assert "(?P" not in regex  # Dataflow validates with Java regexes: no Python-only syntax
        if default is not None:
            assert re.search(regex, str(default)), (regex, default)


def test_readme_examples_match_the_regexes_and_reach_the_options_as_passed_by_the_launcher():
    examples = [(name, value) for name, value in readme_parameters() if name in PARAMETERS]
    assert {name for name, _ in examples} == set(PARAMETERS)  # every parameter has a documented example
    assert ("config", "gs://my-airis-mon-bucket/config/airis-mon.yaml") in examples
    for name, value in examples:
        for regex in PARAMETERS[name]["regexes"]:
            assert re.search(regex, value), (name, value, regex)
        args, beam_args = parse_args([f"--{name}={value}"])
        expected = int(value) if name == "num_shards" else value
        assert getattr(args, name) == expected
        assert beam_args == []


def test_readme_passes_only_template_parameters_and_the_sdk_container_image():
    names = {name for name, _ in readme_parameters()}
    assert names == set(PARAMETERS) | {"sdk_container_image"}  # no streaming=...: Beam's --streaming takes no value
    assert dict(readme_parameters())["sdk_container_image"].startswith("europe-west1-docker.pkg.dev/my-project/")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("config", ""),
        ("config", "http://example.com/airis-mon.yaml"),
        ("config", "gs://"),
        ("config", "gs://my-bucket"),
        ("config", "gs://My_Bucket!/airis-mon.yaml"),
        ("config", "my config.yaml"),
        ("output", ""),
        ("output", "s3://bucket/out"),
        ("output", "gs://"),
        ("output", "gs://x/out"),
        ("output", "out put"),
        ("num_shards", ""),
        ("num_shards", "0"),
        ("num_shards", "-4"),
        ("num_shards", "016"),
        ("num_shards", "1.5"),
        ("num_shards", "sixteen"),
        ("num_shards", "1000000"),
    ],
)
def test_regexes_reject_bad_values(name, value):
    assert not all(re.search(regex, value) for regex in PARAMETERS[name]["regexes"])


def test_metadata_file_is_what_make_metadata_writes():
    assert (TEMPLATES / "metadata.json").read_text(encoding="utf-8") == render(build_metadata())
    result = run_python("-m", "templates.make_metadata", "--check", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "is up to date" in result.stdout


def test_check_fails_on_a_stale_or_missing_file_and_write_fixes_it(tmp_path, capsys):
    target = tmp_path / "metadata.json"
    assert make_metadata.main(["--check", "--file", str(target)]) == 1
    assert "missing" in capsys.readouterr().err
    stale = dict(METADATA, parameters=METADATA["parameters"][:2])
    target.write_text(render(stale), encoding="utf-8")
    assert make_metadata.main(["--check", "--file", str(target)]) == 1
    assert "stale: run python -m templates.make_metadata" in capsys.readouterr().err
    assert make_metadata.main(["--file", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8")) == METADATA
    assert make_metadata.main(["--check", "--file", str(target)]) == 0


def test_make_metadata_refuses_an_option_without_ui_and_ui_without_option(monkeypatch, tmp_path, capsys):
    original = dict(make_metadata.PARAMETER_UI)
    table = dict(original)
    del table["num_shards"]
    monkeypatch.setattr(make_metadata, "PARAMETER_UI", table)
    with pytest.raises(MetadataError, match=r"options without a label and regexes .*\['num_shards'\]"):
        build_metadata()
    target = tmp_path / "metadata.json"
    assert make_metadata.main(["--file", str(target)]) == 2
    assert "num_shards" in capsys.readouterr().err
    assert not target.exists()

    monkeypatch.setattr(make_metadata, "PARAMETER_UI", {**original, "region": ParameterUi("Region", (r"^\S+$",))})
    with pytest.raises(MetadataError, match=r"not AirisMonOptions options: \['region'\]"):
        build_metadata()


def test_make_metadata_refuses_a_regex_that_rejects_the_default_or_is_not_anchored(monkeypatch):
    ui = dict(make_metadata.PARAMETER_UI)
    monkeypatch.setattr(make_metadata, "PARAMETER_UI", ui)
    ui["num_shards"] = ParameterUi("Shards", (r"^[1-9]$",))
    with pytest.raises(MetadataError, match="rejects the default 16"):
        build_metadata()
    ui["num_shards"] = ParameterUi("Shards", (r"[0-9]+",))
    with pytest.raises(MetadataError, match="must be anchored"):
        build_metadata()
    ui["num_shards"] = ParameterUi("Shards", (r"^([0-9]+$",))
    with pytest.raises(MetadataError, match="does not compile"):
        build_metadata()


# --- Dockerfile ------------------------------------------------------------------------------------------------------


def test_dockerfile_pins_exactly_the_beam_version_setup_py_allows():
    version = docker_args()["BEAM_VERSION"]
    specifiers = setup_beam_specifiers()
    assert len(specifiers) >= 2  # core and the gcp extra
    for specifier in specifiers:
        assert version in specifier, (version, specifier)
        assert f">={version}" in str(specifier).split(",")  # the lowest allowed, exactly: 2.77.0
    assert apache_beam.__version__ == version  # the tests ran the same Beam as the image
    froms = [docker_expand(arguments) for keyword, arguments in dockerfile() if keyword == "FROM"]
    assert f"apache/beam_python3.11_sdk:{version} AS beam_sdk" in froms
    (install,) = [a for k, a in dockerfile() if k == "RUN" and "pip install" in a]
    assert '"apache-beam[gcp]==${BEAM_VERSION}"' in install
    stage_args = [a for k, a in dockerfile() if k == "ARG"]
    assert stage_args.count("BEAM_VERSION") == 1  # re-declared (no value) in the final stage, so pip sees it


def test_dockerfile_python_matches_the_launcher_base_and_setup_py():
    froms = [docker_expand(arguments) for keyword, arguments in dockerfile() if keyword == "FROM"]
    assert froms[0].startswith("apache/beam_python3.11_sdk:")
    assert froms[-1].startswith("gcr.io/dataflow-templates-base/python311-template-launcher-base")
    python_requires = next(
        ast.literal_eval(k.value)
        for node in ast.walk(setup_py())
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup"
        for k in node.keywords
        if k.arg == "python_requires"
    )
    assert "3.11" in SpecifierSet(python_requires)


def test_dockerfile_installs_every_dependency_at_build_time_in_one_pip_call():
    instructions = dockerfile()
    installs = [a for k, a in instructions if k == "RUN" and "pip install" in a]
    assert len(installs) == 1
    (install,) = installs
    assert "--no-cache-dir" in install and install.endswith("&& pip check")
    (target,) = re.findall(r'"\.\[([^\]]+)\]"', install)
    extras = set(docker_expand(target).split(","))
    assert "gcp" in extras and extras <= setup_extras(), extras
    assert docker_args()["EXTRAS"] == "all"
    env = " ".join(a for k, a in instructions if k == "ENV")
    for launch_time_install in ("REQUIREMENTS_FILE", "SETUP_FILE", "EXTRA_PACKAGES"):
        assert f"FLEX_TEMPLATE_PYTHON_{launch_time_install}" not in env
    assert instructions.index(("RUN", install)) > max(i for i, (k, _) in enumerate(instructions) if k == "COPY")


def test_dockerfile_copies_every_package_and_points_the_launcher_at_launch_py():
    instructions = dockerfile()
    copied = {
        source.rstrip("/")
        for keyword, arguments in instructions
        if keyword == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    }
    assert setup_packages() <= copied, setup_packages() - copied
    assert {"setup.py", "pyproject.toml", "templates"} <= copied
    (workdir,) = [a for k, a in instructions if k == "WORKDIR"]
    (py_file,) = [
        a.split("=", 1)[1] for k, a in instructions if k == "ENV" and a.startswith("FLEX_TEMPLATE_PYTHON_PY_FILE=")
    ]
    relative = Path(py_file).relative_to(workdir)
    assert relative == Path("templates/launch.py")
    assert (ROOT / relative).is_file()


def test_dockerfile_serves_as_launcher_and_as_worker():
    instructions = dockerfile()
    assert ("COPY", "--from=beam_sdk /opt/apache/beam /opt/apache/beam") in instructions
    assert instructions[-1] == ("ENTRYPOINT", '["/opt/apache/beam/boot"]')
    final_stage = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    assert instructions[final_stage] == ("FROM", "${LAUNCHER_IMAGE}")  # it brings the launcher binary


# --- launch.py, run as the Dataflow launcher runs it ---------------------------------------------------------------


def test_launch_help_lists_every_template_parameter(tmp_path):
    result = run_python(str(TEMPLATES / "launch.py"), "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in PARAMETERS:
        assert f"--{name}" in result.stdout


def test_launch_exits_with_the_jobs_exit_code(tmp_path):
    valid = run_python(str(TEMPLATES / "launch.py"), "--validate", cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert "bundled sample config: valid" in valid.stdout
    missing = tmp_path / "absent.yaml"
    invalid = run_python(str(TEMPLATES / "launch.py"), f"--config={missing}", "--validate", cwd=tmp_path)
    assert invalid.returncode == 2
    assert f"cannot read {missing}" in invalid.stderr
