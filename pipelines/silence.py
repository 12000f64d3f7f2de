"""``python -m pipelines.silence``: create, list and expire silences through the gateway's API, like ``amtool``.

::

    export AIRIS_TOKEN=...            # a token with the silences:write scope to add or expire
    python -m pipelines.silence --url http://127.0.0.1:8080 add model_name=fraud 'severity=~high|critical' \\
        --duration 2h --author jdoe --comment "deploy of fraud v42"
    python -m pipelines.silence --url http://127.0.0.1:8080 query              # active and pending
    python -m pipelines.silence --url http://127.0.0.1:8080 query --expired model_name=fraud
    python -m pipelines.silence --url http://127.0.0.1:8080 expire 3f0c...     # one or more ids

Matchers are Alertmanager's: ``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex``. The token
is read from the environment variable ``--token-env`` names (default ``AIRIS_TOKEN``), never from the
command line. ``add`` prints the new silence's id; ``query`` prints one line per silence (``-q``: ids
only); exit status 1 when the API refused the request (its message on stderr), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import requests

from airis_mon.durations import parse_duration_s
from airis_mon.silence_store import format_matcher, parse_matcher
from airis_mon.timeutil import ms_to_iso, to_epoch_ms

__all__ = ["main", "parse_matcher_api"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.silence", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway's base URL")
    parser.add_argument("--token-env", default="AIRIS_TOKEN", help="environment variable holding the token")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, s")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a silence; prints its id")
    add.add_argument("matchers", nargs="+", metavar="MATCHER")
    end = add.add_mutually_exclusive_group()
    end.add_argument("--duration", default="1h", help="from the start, e.g. 30m, 2h (default 1h)")
    end.add_argument("--end", help="end time, ISO-8601")
    add.add_argument("--start", help="start time, ISO-8601 (default now)")
    add.add_argument("--author", default=os.environ.get("USER", "") or None, help="createdBy (default $USER)")
    add.add_argument("--comment", required=True)
    query = commands.add_parser("query", help="list silences (active and pending; --expired: expired ones)")
    query.add_argument("matchers", nargs="*", metavar="MATCHER", help="only silences with these matchers")
    query.add_argument("--expired", action="store_true", help="expired silences instead")
    query.add_argument("-q", "--quiet", action="store_true", help="ids only")
    expire = commands.add_parser("expire", help="expire silences now (they stay listed as expired)")
    expire.add_argument("ids", nargs="+", metavar="ID")
    return parser


def _fail(answer: requests.Response) -> int:
    try:
        body = answer.json()
        message = body.get("error", "") + "".join(f"; {d['field']}: {d['message']}" for d in body.get("details", []))
    except ValueError:
        message = answer.text[:500]
    print(f"error: HTTP {answer.status_code}: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    token = os.environ.get(args.token_env)
    if not token:
        parser.error(f"set the token in the environment variable {args.token_env}")
    headers = {"Authorization": f"Bearer {token}"}
    base = args.url.rstrip("/")
    try:
        matchers = [parse_matcher(m) for m in getattr(args, "matchers", [])]
    except ValueError as error:
        parser.error(str(error))
    if args.command == "add":
        if not args.author:
            parser.error("--author is required (or set USER)")
        start_ms = to_epoch_ms(args.start) if args.start else int(time.time() * 1000)
        end_ms = to_epoch_ms(args.end) if args.end else start_ms + parse_duration_s(args.duration) * 1000
        body = {"matchers": [m.api() for m in matchers], "startsAt": ms_to_iso(start_ms), "endsAt": ms_to_iso(end_ms),
                "createdBy": args.author, "comment": args.comment}  # fmt: skip
        answer = requests.post(f"{base}/api/v2/silences", json=body, headers=headers, timeout=args.timeout)
        if not answer.ok:
            return _fail(answer)
        print(answer.json()["silenceID"])
        return 0
    if args.command == "query":
        params = [("filter", format_matcher(m)) for m in matchers]
        answer = requests.get(f"{base}/api/v2/silences", params=params, headers=headers, timeout=args.timeout)
        if not answer.ok:
            return _fail(answer)
        wanted = {"expired"} if args.expired else {"active", "pending"}
        for silence in answer.json():
            if silence["status"]["state"] not in wanted:
                continue
            if args.quiet:
                print(silence["id"])
                continue
            shown = " ".join(format_matcher(parse_matcher_api(m)) for m in silence["matchers"])
            print(f"{silence['id']}  {shown}  {silence['status']['state']}  {silence['startsAt']} .. "
                  f"{silence['endsAt']}  {silence['createdBy']}  {silence['comment']}")  # fmt: skip
        return 0
    status = 0
    for silence_id in args.ids:
        answer = requests.delete(f"{base}/api/v2/silence/{silence_id}", headers=headers, timeout=args.timeout)
        if not answer.ok:
            status = _fail(answer)
    return status


def parse_matcher_api(matcher: dict):
    """A matcher of an API answer as a :class:`~airis_mon.silence_store.SilenceMatcher`."""
    from airis_mon.silence_store import SilenceMatcher

    return SilenceMatcher.model_validate(matcher)


if __name__ == "__main__":
    sys.exit(main())
