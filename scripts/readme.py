"""Regenerate the README's sample outputs from the commands that print them, so they cannot go stale.

    python -m scripts.readme           # rewrite the stale output blocks of README.md in place
    python -m scripts.readme --check   # write nothing; exit 1 with a diff when a block is stale

Run it from the checkout root. A sample output in a README is a fenced block right after a comment
naming the command that prints it (``(exit N)`` at the end: a command expected to exit with status N)::

    <!-- output of: python -m pipelines.main --runner DirectRunner -->
    ```
    AIRIS-MON run summary
    ...
    ```

How the commands run (:func:`run_commands`): in the order they appear, one after another, through
``bash -c``, in one fresh temporary folder that links every tracked top-level entry of the checkout, so
``examples/...`` and ``python -m benchmarks...`` resolve as they do from the checkout root while what a
command writes (``./airis-mon-output``) lands in the temporary folder and a later command (the backtest)
reads it. Standard input is ``/dev/null`` and standard output and error share one pipe: no terminal, so
no progress line, and the lines come in the order a terminal shows them (``PYTHONUNBUFFERED``). ``python``
is this interpreter; the environment loses the variables the example configs read (``{env: NAME}``), so a
block shows what a fresh shell prints.

What is rewritten (:func:`normalise`): the temporary folder and the checkout's own path become
``/path/to/airis-mon``; trailing blanks go. What is compared: everything but the :data:`VOLATILE` parts,
which differ from machine to machine (the run's wall time, the run key: a digest of the input files'
absolute paths). A block that differs only there is left as it is; a stale block is rewritten whole,
with the values of this run.

Exit status: 0 current (or rewritten), 1 stale (``--check``), 2 a command failed or a marker has no block.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
#: What machine-specific paths become in a block.
PLACEHOLDER_ROOT = "/path/to/airis-mon"
#: Parts of an output that vary between runs and machines: compared masked, kept as measured.
VOLATILE: dict[str, re.Pattern[str]] = {
    "wall time of a run": re.compile(r"took\s+[\d.,]+ s\b"),
    "run key (digest of the input files' paths and sizes)": re.compile(r"\b[0-9a-f]{16}\b"),
}
#: Longest a command may take, s.
TIMEOUT_S = 900
#: Configs whose ``{env: NAME}`` variables are removed from the commands' environment.
CONFIG_GLOBS = ("examples/*.yaml", "deploy/*.yaml", "airis_mon/sample_data/*.yaml")

_MARKER = re.compile(
    r"^<!-- output of: (?P<command>.+?)(?: \(exit (?P<exit>\d+)\))? -->\n"
    r"(?:```[\w-]*\n(?P<body>.*?)^```$)?",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    """One sample-output block: the command that prints it and the text it shows now."""

    command: str
    exit_status: int
    body: str  # the block's lines, each ending with a newline
    start: int  # offsets of ``body`` in the README's text
    end: int
    line: int  # line number of the marker


class MarkerError(ValueError):
    """A marker comment not followed by a fenced block."""


def find_blocks(text: str) -> list[Block]:
    """Every marked output block of ``text``, in order."""
    blocks = []
    for match in _MARKER.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if match.group("body") is None:
            raise MarkerError(f"line {line}: '<!-- output of: ... -->' must be followed by a fenced block")
        blocks.append(
            Block(
                command=match.group("command"),
                exit_status=int(match.group("exit") or 0),
                body=match.group("body"),
                start=match.start("body"),
                end=match.end("body"),
                line=line,
            )
        )
    return blocks


def mask(text: str) -> str:
    """``text`` with its :data:`VOLATILE` parts replaced by one placeholder each."""
    for pattern in VOLATILE.values():
        text = pattern.sub("<volatile>", text)
    return text


def normalise(output: str, roots: Sequence[Path]) -> str:
    """Machine-specific paths to :data:`PLACEHOLDER_ROOT`, trailing blanks off, one final newline."""
    spellings = sorted({str(p) for root in roots for p in (root, root.resolve())}, key=len, reverse=True)
    for spelling in spellings:
        output = output.replace(spelling, PLACEHOLDER_ROOT)
    lines = [line.rstrip() for line in output.strip("\n").splitlines()]
    return "\n".join(lines) + "\n" if lines else ""


def _config_variables(repo: Path) -> set[str]:
    names = set()
    for pattern in CONFIG_GLOBS:
        for path in repo.glob(pattern):
            names.update(re.findall(r"\{\s*env:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}", path.read_text(encoding="utf-8")))
    return names


def _environment(repo: Path) -> dict[str, str]:
    drop = _config_variables(repo)
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AIRIS_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    env.update(PYTHONUNBUFFERED="1", TERM="dumb", NO_COLOR="1")
    env.pop("PYTHONPATH", None)
    return env


def _tracked_top_level(repo: Path) -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True, text=True)
        names = {name.split("/", 1)[0] for name in listed.stdout.split("\0") if name}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: everything but outputs and caches
        names = {p.name for p in repo.iterdir() if not p.name.startswith(("airis-mon-", ".git", "."))}
    return sorted(names)


class CommandError(RuntimeError):
    """A marked command exited with another status than its marker says."""


def run_commands(blocks: Sequence[Block], repo: Path = REPO) -> list[str]:
    """Run each block's command (see the module docstring); return their normalised outputs, in order."""
    env = _environment(repo)
    sandbox = Path(tempfile.mkdtemp(prefix="airis-mon-readme-"))
    try:
        for name in _tracked_top_level(repo):
            (sandbox / name).symlink_to(repo / name)
        outputs = []
        for block in blocks:
            result = subprocess.run(
                ["bash", "-c", block.command],
                cwd=sandbox,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=TIMEOUT_S,
            )
            if result.returncode != block.exit_status:
                raise CommandError(
                    f"README line {block.line}: `{block.command}` exited {result.returncode}, "
                    f"expected {block.exit_status}:\n{result.stdout}"
                )
            outputs.append(normalise(result.stdout, [sandbox, repo]))
        return outputs
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


def stale_blocks(blocks: Sequence[Block], outputs: Sequence[str]) -> list[tuple[Block, str]]:
    """The blocks whose text differs from their command's output, beyond the volatile parts."""
    if len(blocks) != len(outputs):
        raise ValueError(f"{len(blocks)} blocks, {len(outputs)} outputs")
    pairs = zip(blocks, outputs, strict=True)
    return [(block, output) for block, output in pairs if mask(block.body) != mask(output)]


def render(text: str, outputs: Sequence[str]) -> str:
    """``text`` with each stale block replaced by its command's output (current blocks stay as they are)."""
    for block, output in reversed(stale_blocks(find_blocks(text), outputs)):
        text = text[: block.start] + output + text[block.end :]
    return text


def diff(old: str, new: str, name: str) -> str:
    """A unified diff of a README and its regenerated text ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), name, f"{name} (regenerated)"
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.readme", description=__doc__.split("\n\n")[0].split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff when stale")
    parser.add_argument("--readme", type=Path, default=README, help=f"the file to regenerate (default {README})")
    args = parser.parse_args(argv)

    text = args.readme.read_text(encoding="utf-8")
    try:
        blocks = find_blocks(text)
        outputs = run_commands(blocks)
    except (MarkerError, CommandError) as error:
        print(f"{args.readme}: {error}", file=sys.stderr)
        return 2
    new = render(text, outputs)
    changes = diff(text, new, args.readme.name)
    stale = len(stale_blocks(blocks, outputs))
    if args.check:
        if changes:
            sys.stdout.write(changes)
            print(f"{args.readme}: {stale} of {len(blocks)} output block(s) stale; run python -m scripts.readme")
            return 1
        print(f"{args.readme}: {len(blocks)} output block(s) current")
        return 0
    if changes:
        args.readme.write_text(new, encoding="utf-8")
        sys.stdout.write(changes)
    print(f"{args.readme}: {stale} of {len(blocks)} output block(s) rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
