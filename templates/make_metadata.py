"""Write ``templates/metadata.json``, the flex template's parameters, from the job's own options parser.

Every :class:`~pipelines.options.AirisMonOptions` option becomes one parameter: its ``dest`` is the
parameter name (Dataflow's launcher passes ``--NAME=VALUE`` to ``templates/launch.py``), its argparse
``help`` is the ``helpText`` and it is optional unless the option is ``required``. Labels and
validation regexes come from :data:`PARAMETER_UI`. An option without an entry there, an entry
without an option, or a regex that rejects the option's default is an error, so the file cannot drift
from the parser::

    python -m templates.make_metadata            # (re)write templates/metadata.json
    python -m templates.make_metadata --check    # exit 1 if the file is not what would be written
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airis_mon.extras import one_line_on_missing_extra
from pipelines.options import AirisMonOptions

__all__ = ["METADATA_PATH", "PARAMETER_UI", "MetadataError", "ParameterUi", "build_metadata", "main", "render"]

#: Where the template's metadata lives (``gcloud dataflow flex-template build --metadata-file``).
METADATA_PATH = Path(__file__).with_name("metadata.json")

NAME = "AIRIS-MON"
DESCRIPTION = (
    "AIRIS-MON monitoring hub for AI/ML systems: reads the integrations of one YAML config, normalizes and "
    "aggregates their metrics, evaluates alert rules, routes notifications and stores every record."
)

# A Cloud Storage bucket (3-222 characters: lower-case letters, digits, '-', '_', '.'), then a local
# path: no whitespace and no ':' (so no other URL scheme slips through as a "path").
_GCS_BUCKET = r"gs://[a-z0-9][-_.a-z0-9]{1,220}[a-z0-9]"
_LOCAL_PATH = r"[^\s:]+"


@dataclass(frozen=True)
class ParameterUi:
    """What the parser does not know: the console label and the values Dataflow accepts (anchored regexes)."""

    label: str
    regexes: tuple[str, ...]


#: One entry per AirisMonOptions option, by ``dest``.
PARAMETER_UI: dict[str, ParameterUi] = {
    "config": ParameterUi("Config file (YAML)", (rf"^({_GCS_BUCKET}/\S+|{_LOCAL_PATH})$",)),
    "output": ParameterUi("Output folder", (rf"^({_GCS_BUCKET}(/\S*)?|{_LOCAL_PATH})$",)),
    "num_shards": ParameterUi("Aggregation shards", (r"^[1-9][0-9]{0,4}$",)),
}


class MetadataError(ValueError):
    """The options parser and :data:`PARAMETER_UI` disagree, or a regex is unusable."""


def option_actions() -> list[argparse.Action]:
    """The argparse actions of :class:`AirisMonOptions` (the job's own options, not Beam's), in order."""
    parser = argparse.ArgumentParser(add_help=False)
    AirisMonOptions._add_argparse_args(parser)
    return list(parser._actions)


def _parameter(action: argparse.Action, ui: ParameterUi) -> dict:
    flag = f"--{action.dest}"
    if flag not in action.option_strings:
        raise MetadataError(f"option {action.option_strings} has no {flag} flag, but the launcher passes {flag}=VALUE")
    if not action.help:
        raise MetadataError(f"option {flag} has no help text (it becomes the parameter's helpText)")
    for regex in ui.regexes:
        if not (regex.startswith("^") and regex.endswith("$")):
            raise MetadataError(f"parameter {action.dest}: regex {regex!r} must be anchored with ^ and $")
        try:
            pattern = re.compile(regex)
        except re.error as error:
            raise MetadataError(f"parameter {action.dest}: regex {regex!r} does not compile: {error}") from None
        if action.default is not None and not pattern.search(str(action.default)):
            raise MetadataError(f"parameter {action.dest}: regex {regex!r} rejects the default {action.default!r}")
    return {
        "name": action.dest,
        "label": ui.label,
        "helpText": action.help,
        "isOptional": not action.required,
        "regexes": list(ui.regexes),
    }


def build_metadata() -> dict:
    """The template metadata: name, description, ``streaming`` and one parameter per option."""
    actions = option_actions()
    dests = [action.dest for action in actions]
    missing = [dest for dest in dests if dest not in PARAMETER_UI]
    if missing:
        raise MetadataError(f"options without a label and regexes in templates/make_metadata.py: {missing}")
    unknown = sorted(set(PARAMETER_UI) - set(dests))
    if unknown:
        raise MetadataError(f"PARAMETER_UI entries that are not AirisMonOptions options: {unknown}")
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "streaming": True,
        "parameters": [_parameter(action, PARAMETER_UI[action.dest]) for action in actions],
    }


def render(metadata: dict) -> str:
    """The file's exact text: 2-space indented JSON and a final newline."""
    return json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the metadata file, or with ``--check`` compare it; returns the exit code (0, 1 stale, 2 error)."""
    parser = argparse.ArgumentParser(prog="python -m templates.make_metadata", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale instead of writing it")
    parser.add_argument("--file", type=Path, default=METADATA_PATH, help=f"metadata file. Default: {METADATA_PATH}")
    args = parser.parse_args(argv)
    try:
        text = render(build_metadata())
    except MetadataError as error:
        print(f"cannot build the template metadata: {error}", file=sys.stderr)
        return 2
    if args.check:
        current = args.file.read_text(encoding="utf-8") if args.file.exists() else None
        if current != text:
            state = "missing" if current is None else "stale"
            print(f"{args.file} is {state}: run python -m templates.make_metadata", file=sys.stderr)
            return 1
        print(f"{args.file} is up to date")
        return 0
    args.file.write_text(text, encoding="utf-8")
    print(f"wrote {args.file}")
    return 0


if __name__ == "__main__":
    with one_line_on_missing_extra("python -m templates.make_metadata"):
        sys.exit(main())
