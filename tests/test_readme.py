"""The README cannot go stale: its sample outputs are what their commands print now (``scripts/readme.py``), every
``python -m`` command it shows follows an install line naming the extras it needs, and it links only inside the
repository (or to public web pages)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from airis_mon.extras import COMMAND_EXTRAS

REPO = Path(__file__).resolve().parents[1]
READMES = [REPO / "README.md", REPO / "templates" / "README.md"]
#: ``python -m`` modules a README may show that are not this project's commands.
OTHER_MODULES = {"venv", "pip", "pytest"}


def _load_generator():
    spec = importlib.util.spec_from_file_location("scripts.readme", REPO / "scripts" / "readme.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


readme = _load_generator()
TEXT = (REPO / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def outputs() -> list[str]:
    """What each marked command of README.md prints now (runs the main job on the sample: ~30 s)."""
    return readme.run_commands(readme.find_blocks(TEXT))


# --------------------------------------------------------------------------- sample outputs


@pytest.mark.slow
def test_the_sample_outputs_are_what_the_commands_print(outputs):
    stale = readme.stale_blocks(readme.find_blocks(TEXT), outputs)
    assert not stale, "README.md is stale; run python -m scripts.readme:\n" + readme.diff(
        TEXT, readme.render(TEXT, outputs), "README.md"
    )


@pytest.mark.slow
def test_a_changed_number_is_stale_and_regenerating_restores_it(outputs):
    blocks = readme.find_blocks(TEXT)
    summary = blocks[0]
    assert "62,582" in summary.body, "the first block is the run summary of the sample day"
    changed = TEXT[: summary.start] + summary.body.replace("62,582", "62,583", 1) + TEXT[summary.end :]
    stale = readme.stale_blocks(readme.find_blocks(changed), outputs)
    assert [block.command for block, _ in stale] == [summary.command]
    regenerated = readme.render(changed, outputs)
    assert "62,583" not in regenerated
    assert "-  records read          62,583" in readme.diff(changed, regenerated, "README.md")
    assert not readme.stale_blocks(readme.find_blocks(regenerated), outputs)


@pytest.mark.slow
def test_the_volatile_parts_are_not_stale(outputs):
    summary = readme.find_blocks(TEXT)[0]
    body = re.sub(r"took\s+[\d.]+ s", "took                    99.9 s", summary.body)
    body = re.sub(r"\b[0-9a-f]{16}\b", "0123456789abcdef", body)
    assert body != summary.body
    changed = TEXT[: summary.start] + body + TEXT[summary.end :]
    assert not readme.stale_blocks(readme.find_blocks(changed), outputs)
    assert readme.render(changed, outputs) == changed, "a current block keeps its measured values"


def test_check_exits_1_on_a_stale_block_and_a_rewrite_makes_it_current(tmp_path, capsys):
    copy = tmp_path / "README.md"
    copy.write_text(
        "# x\n\n```bash\npython -m pipelines.main --validate\n```\n\n"
        "<!-- output of: python -m pipelines.main --validate -->\n"
        "```\nbundled sample config: valid (9 integrations)\n```\n",
        encoding="utf-8",
    )
    before = copy.read_text(encoding="utf-8")
    assert readme.main(["--check", "--readme", str(copy)]) == 1
    assert "-bundled sample config: valid (9 integrations)" in capsys.readouterr().out
    assert copy.read_text(encoding="utf-8") == before, "--check writes nothing"

    assert readme.main(["--readme", str(copy)]) == 0
    assert "(9 integrations)" not in copy.read_text(encoding="utf-8")
    assert readme.main(["--check", "--readme", str(copy)]) == 0


def test_a_failing_command_or_a_marker_without_block_is_exit_2(tmp_path, capsys):
    copy = tmp_path / "README.md"
    copy.write_text("<!-- output of: python -m pipelines.main --config missing.yaml --validate -->\n```\n```\n")
    assert readme.main(["--check", "--readme", str(copy)]) == 2
    assert "exited" in capsys.readouterr().err
    copy.write_text("<!-- output of: python -m pipelines.main --validate -->\nno block\n")
    assert readme.main(["--check", "--readme", str(copy)]) == 2


def test_normalise_hides_the_machines_paths(tmp_path):
    text = f"{tmp_path}/airis-mon-output/health_report.json   \n{REPO}/examples/integrations.yaml\n\n"
    assert readme.normalise(text, [tmp_path, REPO]) == (
        "/path/to/airis-mon/airis-mon-output/health_report.json\n/path/to/airis-mon/examples/integrations.yaml\n"
    )


def test_each_marked_command_is_shown_before_its_output():
    for block in readme.find_blocks(TEXT):
        shown = [code for code, _ in _code_blocks(TEXT, block.start, same_section=True) if block.command in code]
        assert shown, f"line {block.line}: `{block.command}` is not in a bash block of its section before its output"


def test_the_prose_about_the_sample_day_matches_its_summary():
    summary = readme.find_blocks(TEXT)[0].body
    dead = re.search(r"dead-lettered\s+(\d+) records", summary).group(1)
    assert f"The {dead} dead letters are the malformed records" in TEXT
    assert re.search(r"alerts\s+2 triggered", summary), "the prose names two incidents"


# --------------------------------------------------------------------------- commands and their extras

_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
_INSTALL = re.compile(r'pip install -e (?:\.(?=\s|$)|"\.\[(?P<extras>[\w,-]+)\]")', re.MULTILINE)
_MODULE = re.compile(r"\bpython3? -m (?P<module>[\w.]+)")


def _headings(text: str) -> list[int]:
    """Offsets of the headings outside fenced blocks."""
    fenced = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    return [m.start() for m in _HEADING.finditer(text) if not any(a <= m.start() < b for a, b in fenced)]


def _code_blocks(text: str, before: int, same_section: bool) -> list[tuple[str, int]]:
    """Shell blocks ending before offset ``before`` (nearest first), optionally only those of its section."""
    section_start = max([h for h in _headings(text) if h < before], default=0) if same_section else 0
    blocks = [
        (m.group("code"), m.start("code"))
        for m in _FENCE.finditer(text)
        if m.group("lang") in ("bash", "sh", "shell") and section_start <= m.start() and m.end() <= before
    ]
    return blocks[::-1]


def _nearest_install(text: str, block: str, block_start: int, position: int) -> set[str] | None:
    """The extras of the nearest install line before ``position`` of ``block``, else of its section's blocks."""
    installs = [m for m in _INSTALL.finditer(block) if m.start() < position]
    if installs:
        return set(filter(None, (installs[-1].group("extras") or "").split(",")))
    for code, _ in _code_blocks(text, block_start, same_section=True):
        installs = list(_INSTALL.finditer(code))
        if installs:
            return set(filter(None, (installs[-1].group("extras") or "").split(",")))
    return None


def _commands(text: str):
    for match in _FENCE.finditer(text):
        if match.group("lang") not in ("bash", "sh", "shell"):
            continue
        code = match.group("code")
        for command in _MODULE.finditer(code):
            line = text.count("\n", 0, match.start("code") + command.start()) + 1
            yield text, code, match.start(), command, line


@pytest.mark.parametrize("path", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_command_shown_follows_an_install_line_with_its_extras(path):
    checked = 0
    for text, code, block_start, command, line in _commands(path.read_text(encoding="utf-8")):
        module = command.group("module")
        if module in OTHER_MODULES:
            continue
        where = f"{path.name} line {line}: python -m {module}"
        assert module in COMMAND_EXTRAS, f"{where} is not a command of airis_mon.extras.COMMAND_EXTRAS"
        given = _nearest_install(text, code, block_start, command.start())
        assert given is not None, f"{where} has no `pip install -e ...` before it in its block or section"
        needed = set(COMMAND_EXTRAS[module])
        assert "all" in given or needed <= given, f"{where} needs {sorted(needed)}, its install line gives {given}"
        checked += 1
    if path.name == "README.md" and path.parent == REPO:
        assert checked >= 10, "the parser found the README's commands"


def test_the_install_parser():
    text = '## A\n\n```bash\npip install -e ".[gateway]"\n```\n\n## B\n\n```bash\npython -m pipelines.gateway\n```\n'
    (_, code, start, command, _), *_ = _commands(text)
    assert _nearest_install(text, code, start, command.start()) is None, "another section's install does not count"
    text = '```bash\npip install -e . && python -m pipelines.main\npip install -e ".[aws,gcp]"\n```\n'
    (_, code, start, command, _), *_ = _commands(text)
    assert _nearest_install(text, code, start, command.start()) == set()


# --------------------------------------------------------------------------- the README is the repository's own


@pytest.mark.parametrize("path", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_stay_inside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    anchors = {_slug(line.lstrip("#").strip()) for line in text.splitlines() if _HEADING.match(line)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("https://", "http://")):
            continue  # public pages
        if target.startswith("#"):
            assert target[1:] in anchors, f"{path.name}: no heading for the link {target}"
            continue
        resolved = (path.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(REPO) and resolved.exists(), f"{path.name}: {target} is not in the repository"
    outside = re.findall(r"(?<![.\w])\.\./[\w./-]+", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    assert not outside, f"{path.name} points outside the repository: {outside}"
    for word in ("DESIGN.md", "the seed", "seed's"):
        assert word not in text, f"{path.name} mentions {word!r}, which a reader of the repository cannot find"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
