"""``python -m pipelines.rules import FILE.yml [--output OUT.yml] [--strict]``: Prometheus rules -> AIRIS-MON.

Writes the ``rules:`` list (a YAML document ``{rules: [...]}``) of the alerting rules that map (to
``--output``, else stdout) and prints one line per refused rule to stderr, naming the rule and the
unsupported part. Exit status: 0; with ``--strict``, 1 when any rule was refused (nothing is written then);
2 on a file that cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from transforms.rules.prometheus_import import import_rules

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.rules", description="Import Prometheus alerting rules as AIRIS-MON rules YAML."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    imported = commands.add_parser("import", help="import a Prometheus rules file")
    imported.add_argument("file", type=Path)
    imported.add_argument("--output", type=Path, help="write the AIRIS-MON rules here (default: stdout)")
    imported.add_argument("--strict", action="store_true", help="exit 1 (writing nothing) if any rule is refused")
    args = parser.parse_args(argv)
    try:
        document = yaml.safe_load(args.file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        print(f"error: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    rules, refusals = import_rules(document or {})
    for refusal in refusals:
        print(refusal, file=sys.stderr)
    print(f"imported {len(rules)} rule(s), refused {len(refusals)}", file=sys.stderr)
    if args.strict and refusals:
        return 1
    text = yaml.safe_dump({"rules": rules}, sort_keys=False, allow_unicode=True)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
