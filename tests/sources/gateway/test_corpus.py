"""The gateway's refusal corpus (issue 14, item 4): every bad request gets its documented 4xx.

Each case of :data:`CORPUS` is sent to the app in process; its answer must be the expected status, a status
the OpenAPI document lists for the route, never a 5xx (nor a 503, which tells a client to retry what is a
permanent error), a ``details[].field`` naming the field at fault, and no fragment of the input. Nothing
of a refused request is stored.

The framing, size and memory cases run against a real gateway process over raw sockets: ``Content-Length``
with ``Transfer-Encoding``, 200 MB bodies with and without ``Content-Length`` (streamed from a generator,
never held by the test), and unauthenticated requests answered before their body is sent. The gateway's peak
resident memory (``VmHWM``, reset before each case through ``/proc/PID/clear_refs``) may rise by less than
50 MB while it refuses a 200 MB body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from airis_mon.config import parse_config
from sources.gateway.app import create_app
from sources.gateway.spool import SpoolWriter
from tests.sources.gateway.live import LiveGateway

TOKEN = "c0rpus-t0ken-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
MLFLOW_SECRET = b"mlflow-c0rpus-secret"
GITHUB_SECRET = b"github-c0rpus-secret"
NOW_S = 1_795_824_000  # 2026-11-28T00:00:00Z, the app's wall clock
NOW_MS = NOW_S * 1000
LIMIT = 1 << 20  # max_body_bytes (the default)
METRICS, EVENTS, USERS, HOOKS = (
    "/api/v1/metrics/ingest", "/api/v1/events/ingest", "/api/v1/integrations/user-sync",
    "/api/v1/integrations/webhooks",
)  # fmt: skip
MLFLOW, GITHUB = "/mlflow/webhook", "/github/webhook"
TESTDATA = Path(__file__).parent / "testdata"


@dataclass(frozen=True)
class Case:
    """One request and what it must get: ``status`` and a ``details[].field`` equal to ``field`` (or starting
    with it, when it ends with ``*``)."""

    method: str
    path: str
    status: int
    field: str | None
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    chunked: bool = False  # send the body in chunks, without Content-Length


def metrics(**changes) -> dict:
    return {"timestamp": NOW_MS, "source": "ci", "metrics": [{"name": "latency", "value": 1.5}], **changes}


def point(**changes) -> dict:
    return metrics(metrics=[{"name": "latency", "value": 1.5, **changes}])


def event(**changes) -> dict:
    return {"timestamp": NOW_MS, "event_type": "deploy", "source": "ci", "severity": "info", "data": {}, **changes}


def users(**changes) -> dict:
    return {"source": "okta", "users": [{"user_id": "u1", "username": "ana"}], **changes}


def user(**changes) -> dict:
    return users(users=[{"user_id": "u1", "username": "ana", **changes}])


def hook(**changes) -> dict:
    return {"name": "bot", "url": "https://hooks.example.com/in", "events": ["alert.triggered"],
            "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=", **changes}  # fmt: skip


def encoded(document) -> bytes:
    return json.dumps(document, allow_nan=True).encode()


def post(path: str, body, status: int, where: str | None, headers: dict | None = None, **options) -> Case:
    raw = body if isinstance(body, bytes) else encoded(body)
    return Case("POST", path, status, where, raw, JSON if headers is None else headers, **options)


def nested(depth: int, opening: str = "[") -> str:
    """``depth`` arrays (``[``) or objects (``{"a":``) inside one another around a 1."""
    return opening * depth + "1" + {"[": "]", '{"a":': "}"}[opening] * depth


def mlflow_headers(body: bytes, delivery: str, timestamp: int = NOW_S, secret: bytes = MLFLOW_SECRET) -> dict:
    mac = hmac.new(secret, f"{delivery}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(mac).decode()
    return {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": str(timestamp), "X-MLflow-Signature": signature,
            "Content-Type": "application/json"}  # fmt: skip


def github_headers(body: bytes, event_name: str = "workflow_run", secret: bytes = GITHUB_SECRET) -> dict:
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event_name, "X-Hub-Signature-256": signature, "Content-Type": "application/json",
            "X-GitHub-Delivery": hashlib.sha256(body).hexdigest()}  # fmt: skip


def signed_mlflow(name: str, body: bytes, status: int, where: str | None) -> Case:
    return post(MLFLOW, body, status, where, mlflow_headers(body, f"corpus-{name}"))


def signed_github(body: bytes, status: int, where: str | None, event_name: str = "workflow_run") -> Case:
    return post(GITHUB, body, status, where, github_headers(body, event_name))


def _corpus() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    json_routes = {"metrics": (METRICS, metrics()), "events": (EVENTS, event()), "user-sync": (USERS, users()),
                   "webhooks": (HOOKS, hook())}  # fmt: skip

    # Not JSON, or JSON the pipeline could not carry as such, on every JSON route: 400 naming the body.
    not_json = {
        "empty": b"", "open brace": b"{", "open bracket": b"[", "missing value": b'{"a":}', "truncated literal": b"nul",
        "trailing brace": b'{"a":1}}', "single quotes": b"{'a':1}", "trailing comma": b'{"a":1,}',
        "missing colon": b'{"a" 1}', "leading zero": b'{"a":01}', "bad exponent": b'{"a":1e}',
        "bad escape": b'{"a":"\\x41"}', "short unicode escape": b'{"a":"\\u12"}',
        "raw control character": b'{"a":"\x01"}', "comment": b'/*c*/{"a":1}', "invalid UTF-8": b'{"a":"\xc3\x28"}',
        "UTF-16": '{"a":1}'.encode("utf-16"), "UTF-8 BOM": b'\xef\xbb\xbf{"a":1}', "NUL byte": b"\x00",
        "integer of 5000 digits": b'{"a":1' + b"0" * 5000 + b"}", "depth 10,000": nested(10_000).encode(),
        "depth 100,000": nested(100_000).encode(), "object depth 10,000": nested(10_000, '{"a":').encode(),
    }  # fmt: skip
    for route, (path, _) in json_routes.items():
        for name, body in not_json.items():
            cases[f"{route}: {name}"] = post(path, body, 400, "(body)")

    # Deeply nested JSON inside a valid payload: decodable (depth 100: a 400 naming where) or not (the body).
    for depth, expected in ((100, None), (10_000, "(body)"), (100_000, "(body)")):
        for opening, kind in (("[", "arrays"), ('{"a":', "objects")):
            deep = nested(depth, opening)
            inner = "[0]" if opening == "[" else ".a"
            for route, path, template, where in (
                ("metrics", METRICS, f'{{"timestamp": {NOW_MS}, "source": "ci", "metrics": [{{"name": "x", '
                 '"value": 1, "tags": {"k": DEEP}}]}', "metrics[0].tags.k"),
                ("events", EVENTS, f'{{"timestamp": {NOW_MS}, "event_type": "deploy", "source": "ci", '
                 '"severity": "info", "data": {"k": DEEP}}', "data.k"),
                ("user-sync", USERS, '{"source": "okta", "users": DEEP}', "users"),
                ("webhooks", HOOKS, '{"name": "bot", "url": "https://hooks.example.com/in", "events": '
                 '["alert.triggered"], "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=", "headers": DEEP}', "headers"),
            ):  # fmt: skip
                if route in ("user-sync",) and opening != "[":
                    continue
                if route == "webhooks" and opening == "[":
                    continue
                body = template.replace("DEEP", deep).encode()
                cases[f"{route}: {kind} nested {depth:,} deep"] = post(path, body, 400, expected or f"{where}{inner}*")

    # Wrong types and values, field by field.
    refused = {
        "metrics": (METRICS, {
            "timestamp false": (metrics(timestamp=False), "timestamp"),
            "timestamp true": (metrics(timestamp=True), "timestamp"),
            "timestamp null": (metrics(timestamp=None), "timestamp"),
            "timestamp object": (metrics(timestamp={"s": 1}), "timestamp"),
            "timestamp array": (metrics(timestamp=[NOW_MS]), "timestamp"),
            "timestamp empty string": (metrics(timestamp=""), "timestamp"),
            "timestamp words": (metrics(timestamp="yesterday"), "timestamp"),
            "timestamp numeric string": (metrics(timestamp=str(NOW_MS)), "timestamp"),
            "timestamp date only": (metrics(timestamp="2026-11-28"), "timestamp"),
            "timestamp without offset": (metrics(timestamp="2026-11-28T00:00:00"), "timestamp"),
            "timestamp with space": (metrics(timestamp="2026-11-28 00:00:00Z"), "timestamp"),
            "timestamp February 30": (metrics(timestamp="2026-02-30T00:00:00Z"), "timestamp"),
            "timestamp hour 24": (metrics(timestamp="2026-11-28T24:00:00Z"), "timestamp"),
            "timestamp negative": (metrics(timestamp=-1), "timestamp"),
            "timestamp before 1970 by a fraction": (metrics(timestamp=-0.0001), "timestamp"),
            "timestamp 1e30": (metrics(timestamp=1e30), "timestamp"),
            "timestamp 2**64": (metrics(timestamp=2**64), "timestamp"),
            "timestamp year 2999": (metrics(timestamp="2999-01-01T00:00:00Z"), "timestamp"),
            "timestamp a day and a second ahead": (metrics(timestamp=NOW_S + 86_401), "timestamp"),
            "timestamp year 0": (metrics(timestamp="0000-02-03T04:05:06Z"), "timestamp"),
            "missing timestamp": ({"source": "ci", "metrics": [{"name": "x", "value": 1}]}, "timestamp"),
            "source number": (metrics(source=1), "source"),
            "source empty": (metrics(source=""), "source"),
            "source null": (metrics(source=None), "source"),
            "source 257 characters": (metrics(source="s" * 257), "source"),
            "source lone surrogate": (encoded(metrics(source="\ud800")), "source"),
            "metrics a string": (metrics(metrics="latency"), "metrics"),
            "metrics empty": (metrics(metrics=[]), "metrics"),
            "metrics of numbers": (metrics(metrics=[1]), "metrics[0]"),
            "metric empty object": (metrics(metrics=[{}]), "metrics[0].name"),
            "metric name empty": (point(name=""), "metrics[0].name"),
            "metric name 257 characters": (point(name="n" * 257), "metrics[0].name"),
            "metric name number": (point(name=1), "metrics[0].name"),
            "metric name lone surrogate": (encoded(point(name="\udfff")), "metrics[0].name"),
            "value string": (point(value="fast"), "metrics[0].value"),
            "value boolean": (point(value=True), "metrics[0].value"),
            "value null": (point(value=None), "metrics[0].value"),
            "value NaN": (encoded(point(value=float("nan"))), "metrics[0].value"),
            "value Infinity": (encoded(point(value=float("inf"))), "metrics[0].value"),
            "value -Infinity": (encoded(point(value=float("-inf"))), "metrics[0].value"),
            'value "1e400"': (point(value="1e400"), "metrics[0].value"),
            "value 1e400": (encoded(point(value=1)).replace(b'"value": 1', b'"value": 1e400'), "metrics[0].value"),
            "value integer of 400 digits": (point(value=10**400), "metrics[0].value"),
            "unit 65 characters": (point(unit="u" * 65), "metrics[0].unit"),
            "tags a list": (point(tags=["a"]), "metrics[0].tags"),
            "tag NaN": (encoded(point(tags={"k": float("nan")})), "metrics[0].tags.k"),
            "tag key lone surrogate": (encoded(point(tags={"\udc00": "v"})), "metrics[0].tags.\\udc00"),
            "unknown point field": (point(colour="red"), "metrics[0].colour"),
            "unknown field": (metrics(colour="red"), "colour"),
            "root array": ([metrics()], "(root)"),
            "root string": ("metrics", "(root)"),
            "root number": (1, "(root)"),
            "root null": (None, "(root)"),
        }),
        "events": (EVENTS, {
            "timestamp false": (event(timestamp=False), "timestamp"),
            "timestamp words": (event(timestamp="soon"), "timestamp"),
            "timestamp NaN": (encoded(event(timestamp=float("nan"))), "timestamp"),
            "timestamp Infinity": (encoded(event(timestamp=float("inf"))), "timestamp"),
            "timestamp before 1970": (event(timestamp="1969-12-31T23:59:59Z"), "timestamp"),
            "timestamp offset before 1970": (event(timestamp="1970-01-01T00:30:00+01:00"), "timestamp"),
            "severity unknown": (event(severity="fatal"), "severity"),
            "severity number": (event(severity=3), "severity"),
            "severity null": (event(severity=None), "severity"),
            "event_type empty": (event(event_type=""), "event_type"),
            "event_type 257 characters": (event(event_type="e" * 257), "event_type"),
            "event_type missing": ({k: v for k, v in event().items() if k != "event_type"}, "event_type"),
            "data a list": (event(data=[1]), "data"),
            "data a string": (event(data="x"), "data"),
            "data NaN": (encoded(event(data={"a": float("nan")})), "data.a"),
            "data -Infinity": (encoded(event(data={"a": [float("-inf")]})), "data.a[0]"),
            "data 1e400": (encoded(event(data={"a": 1})).replace(b'"a": 1', b'"a": 1e400'), "data.a"),
            "data lone surrogate value": (encoded(event(data={"a": "\ud83d"})), "data.a"),
            "data lone surrogate key": (encoded(event(data={"\ud83d": 1})), "data.\\ud83d"),
            "unknown field": (event(extra=1), "extra"),
        }),
        "user-sync": (USERS, {
            "timestamp false": (users(timestamp=False), "timestamp"),
            "timestamp numeric string": (users(timestamp="1764720000"), "timestamp"),
            "source empty": (users(source=""), "source"),
            "users empty": (users(users=[]), "users"),
            "users 10,001": (users(users=[{"user_id": "u", "username": "a"}] * 10_001), "users"),
            "users a dict": (users(users={"u1": "ana"}), "users"),
            "user_id empty": (user(user_id=""), "users[0].user_id"),
            "user_id 257 characters": (user(user_id="u" * 257), "users[0].user_id"),
            "user_id number": (user(user_id=7), "users[0].user_id"),
            "username missing": (users(users=[{"user_id": "u1"}]), "users[0].username"),
            "email 321 characters": (user(email="e" * 321), "users[0].email"),
            "groups 1,001": (user(groups=["g"] * 1001), "users[0].groups"),
            "group number": (user(groups=["ml", 1]), "users[0].groups[1]"),
            "group lone surrogate": (encoded(user(groups=["\udbff"])), "users[0].groups[0]"),
            "unknown user field": (user(password="hunter2-secret"), "users[0].password"),
        }),
        "webhooks": (HOOKS, {
            "name empty": (hook(name=""), "name"),
            "name with a space": (hook(name="my bot"), "name"),
            "name with a newline": (hook(name="bot\n"), "name"),
            "name 129 characters": (hook(name="b" * 129), "name"),
            "url ftp": (hook(url="ftp://hooks.example.com/in"), "url"),
            "url without host": (hook(url="https:///in"), "url"),
            "url loopback": (hook(url="http://127.0.0.1:9/in"), "url"),
            "url loopback as an integer": (hook(url="http://2130706433/in"), "url"),
            "url IPv6 loopback": (hook(url="http://[::1]/in"), "url"),
            "url metadata address": (hook(url="http://169.254.169.254/latest/meta-data"), "url"),
            "url metadata name": (hook(url="http://metadata.google.internal/x"), "url"),
            "url localhost": (hook(url="http://localhost:8080/in"), "url"),
            "url private": (hook(url="https://10.1.2.3/in"), "url"),
            "url port 99999": (hook(url="https://hooks.example.com:99999/in"), "url"),
            "url with a space": (hook(url="https://hooks.example.com/a b"), "url"),
            "url not a URL": (hook(url="0"), "url"),
            "url 2049 characters": (hook(url="https://hooks.example.com/" + "p" * 2023), "url"),
            "events empty": (hook(events=[]), "events"),
            "events unknown": (hook(events=["alert.fired"]), "events"),
            "events a string": (hook(events="*"), "events"),
            "header Host": (hook(headers={"Host": "evil.example"}), "headers.Host"),
            "header Content-Length": (hook(headers={"Content-Length": "0"}), "headers.Content-Length"),
            "header webhook-signature": (hook(headers={"webhook-signature": "v1,x"}), "headers.webhook-signature"),
            "header name with a space": (hook(headers={"X Team": "ml"}), "headers"),
            "header value with CRLF": (hook(headers={"X-Team": "ml\r\nX-Evil: 1"}), "headers.X-Team"),
            "header value a number": (hook(headers={"X-Team": 1}), "headers.X-Team"),
            "header twice in two cases": (hook(headers={"X-Team": "a", "x-team": "b"}), "headers.x-team"),
            "secret 15 characters": (hook(secret="s" * 15), "secret"),
            "secret 513 characters": (hook(secret="s" * 513), "secret"),
            "unknown field": (hook(owner="me"), "owner"),
        }),
    }  # fmt: skip
    for route, (path, table) in refused.items():
        for name, (body, where) in table.items():
            cases[f"{route}: {name}"] = post(path, body, 400, where)

    # Content types (415), size (413), framing (400), Idempotency-Key (400), on every JSON route.
    for route, (path, valid) in json_routes.items():
        body = encoded(valid)
        for kind in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                     "application/jsonx", "application/json-patch+json", "text/json"):  # fmt: skip
            headers = {**AUTH, **({"Content-Type": kind} if kind else {})}
            cases[f"{route}: Content-Type {kind}"] = post(path, body, 415, "Content-Type", headers)
        big = body[:-1] + b', "padding": "' + b"p" * LIMIT + b'"}'
        cases[f"{route}: body over the limit with Content-Length"] = post(path, big, 413, "(body)")
        cases[f"{route}: body over the limit, chunked"] = post(path, big, 413, "(body)", chunked=True)
        both = {**JSON, "Content-Length": str(len(body)), "Transfer-Encoding": "chunked"}
        cases[f"{route}: Content-Length and Transfer-Encoding"] = post(path, body, 400, "Transfer-Encoding", both)
        cases[f"{route}: Content-Length not digits"] = post(path, body, 400, "Content-Length",
                                                            {**JSON, "Content-Length": "+12"})  # fmt: skip
        if route != "webhooks":
            for name, key in (("empty", ""), ("with a space", "a b"), ("256 characters", "k" * 256),
                              ("Latin-1", "cl\xe9".encode("latin-1"))):  # fmt: skip
                headers = {**JSON, "Idempotency-Key": key}
                cases[f"{route}: Idempotency-Key {name}"] = post(path, body, 400, "Idempotency-Key", headers)

    # Credentials: checked first (the bodies here are not even JSON), on every Bearer route.
    bearer_routes = [("POST", METRICS), ("POST", EVENTS), ("POST", USERS), ("POST", HOOKS), ("GET", HOOKS),
                     ("DELETE", HOOKS + "?name=bot"), ("GET", "/api/v1/ingest/000001-0"),
                     ("GET", "/api/v1/integrations/health")]  # fmt: skip
    credentials = {"no Authorization": None, "Bearer alone": "Bearer", "Bearer and a space": "Bearer ",
                   "wrong token": "Bearer wrong-t0ken-value", "Basic": "Basic dXNlcjpwYXNzd29yZA==",
                   "token without scheme": TOKEN, "token in another scheme": f"Token {TOKEN}"}  # fmt: skip
    for method, path in bearer_routes:
        for name, value in credentials.items():
            headers = {"Content-Type": "application/json", **({"Authorization": value} if value else {})}
            body = b"{not json" if method == "POST" else None
            cases[f"{method} {path}: {name}"] = Case(method, path, 401, "Authorization", body, headers)

    # Query and path values.
    queries = {"no name": "", "empty name": "?name=", "name with a space": "?name=a%20b",
               "two names": "?name=bot&name=other", "name 129 characters": "?name=" + "b" * 129}  # fmt: skip
    for name, query in queries.items():
        cases[f"DELETE webhooks: {name}"] = Case("DELETE", HOOKS + query, 400, "name", None, AUTH)
    cases["DELETE webhooks: unknown name"] = Case("DELETE", HOOKS + "?name=nobody", 404, "name", None, AUTH)
    for ack in ("nothing-here", "000000-zz", "000001-" + "f" * 13, "0-0"):
        cases[f"GET ack {ack}"] = Case("GET", f"/api/v1/ingest/{ack}", 404, "id", None, AUTH)

    # Signed webhooks: credentials first, then the body as the pipeline needs it (validly signed).
    mlflow = (TESTDATA / "mlflow_model_version_created.json").read_bytes()
    base = mlflow_headers(mlflow, "corpus-mlflow")
    without = {name: {k: v for k, v in base.items() if k != name} for name in base}
    cases["mlflow: no signature"] = post(MLFLOW, mlflow, 403, "X-MLflow-Signature", without["X-MLflow-Signature"])
    cases["mlflow: empty signature"] = post(MLFLOW, mlflow, 403, "X-MLflow-Signature",
                                            {**base, "X-MLflow-Signature": " "})  # fmt: skip
    cases["mlflow: wrong signature"] = post(MLFLOW, mlflow, 403, "X-MLflow-Signature",
                                            mlflow_headers(mlflow, "corpus-mlflow", secret=b"guess"))  # fmt: skip
    cases["mlflow: signature of another body"] = post(MLFLOW, mlflow + b" ", 403, "X-MLflow-Signature", base)
    cases["mlflow: no delivery id"] = post(MLFLOW, mlflow, 400, "X-MLflow-Delivery-Id", without["X-MLflow-Delivery-Id"])
    cases["mlflow: no timestamp"] = post(MLFLOW, mlflow, 400, "X-MLflow-Timestamp", without["X-MLflow-Timestamp"])
    cases["mlflow: timestamp not digits"] = post(MLFLOW, mlflow, 401, "X-MLflow-Timestamp",
                                                 {**base, "X-MLflow-Timestamp": "soon"})  # fmt: skip
    cases["mlflow: stale timestamp"] = post(MLFLOW, mlflow, 401, "X-MLflow-Timestamp",
                                            mlflow_headers(mlflow, "corpus-stale", NOW_S - 3600))  # fmt: skip
    cases["mlflow: body over the limit"] = post(MLFLOW, b"{" + b" " * LIMIT + b"}", 413, "(body)", base)
    cases["mlflow: body over the limit, chunked"] = post(MLFLOW, b" " * (LIMIT + 1), 413, "(body)", base, chunked=True)
    github = (TESTDATA / "github_workflow_run_completed_failure.json").read_bytes()
    signed = github_headers(github)
    cases["github: no signature"] = post(GITHUB, github, 403, "X-Hub-Signature-256",
                                         {k: v for k, v in signed.items() if k != "X-Hub-Signature-256"})  # fmt: skip
    cases["github: wrong signature"] = post(GITHUB, github, 403, "X-Hub-Signature-256",
                                            github_headers(github, secret=b"guess"))  # fmt: skip
    cases["github: sha1 signature"] = post(GITHUB, github, 403, "X-Hub-Signature-256",
                                           {**signed, "X-Hub-Signature-256": "sha1=" + "0" * 40})  # fmt: skip
    cases["github: body over the limit"] = post(GITHUB, b" " * (LIMIT + 1), 413, "(body)", signed)
    cases["github: body over the limit, chunked"] = post(GITHUB, b" " * (LIMIT + 1), 413, "(body)", signed,
                                                         chunked=True)  # fmt: skip
    for route in ("mlflow", "github"):
        path = MLFLOW if route == "mlflow" else GITHUB
        both = {"Content-Length": "2", "Transfer-Encoding": "chunked", "X-MLflow-Signature": "v1,x",
                "X-MLflow-Delivery-Id": "d", "X-MLflow-Timestamp": str(NOW_S),
                "X-Hub-Signature-256": "sha256=0"}  # fmt: skip
        cases[f"{route}: Content-Length and Transfer-Encoding"] = post(path, b"{}", 400, "Transfer-Encoding", both)
    for name, body, where in (
        ("empty body", b"", "(body)"), ("not JSON", b"model version created", "(body)"), ("truncated", b"{", "(body)"),
        ("invalid UTF-8", b'{"a": "\xff"}', "(body)"), ("UTF-16", mlflow.decode().encode("utf-16"), "(body)"),
        ("depth 100", nested(100).encode(), "[0]*"), ("depth 10,000", nested(10_000).encode(), "(body)"),
        ("depth 100,000", nested(100_000).encode(), "(body)"),
        ("object depth 100,000", nested(100_000, '{"a":').encode(), "(body)"),
        ("NaN", mlflow.replace(b'"version": "12"', b'"version": "12", "score": NaN'), "data.score"),
        ("lone surrogate", mlflow.replace(b'"version": "12"', b'"version": "12", "k": "\\ud800"'), "data.k"),
        ("integer of 5000 digits", b'{"a": 1' + b"0" * 5000 + b"}", "(body)"),
        ("an array", b"[]", "(root)"), ("null", b"null", "(root)"), ("a string", b'"created"', "(root)"),
        ("timestamp in 2090", mlflow.replace(b"2026-11-28T00:05:00.123456+00:00", b"2090-01-01T00:00:00+00:00"),
         "timestamp"),
    ):  # fmt: skip
        cases[f"mlflow signed: {name}"] = signed_mlflow(name, body, 400, where)
        if name != "timestamp in 2090":
            github_body = github.replace(b'"action"', b'"score": NaN, "action"', 1) if name == "NaN" else body
            github_body = (github.replace(b'"action"', b'"k": "\\ud800", "action"', 1) if name == "lone surrogate"
                           else github_body)  # fmt: skip
            github_where = {"NaN": "score", "lone surrogate": "k"}.get(name, where)
            cases[f"github signed: {name}"] = signed_github(github_body, 400, github_where)
    return cases


CORPUS = _corpus()


class RecordingWriter(SpoolWriter):
    """The spool writer, recording every entry handed to it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entries = []

    def submit(self, entry):
        self.entries.append(entry)
        return super().submit(entry)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "health_report.json").write_text('{"overall_status": "healthy", "integrations": {}}')
    entry = {"name": "api", "type": "gateway", "spool": "spool",
             "tokens": [{"name": "ci", "token": {"env": "C_TOKEN"}}],
             "mlflow_webhook_secret": {"env": "C_MLFLOW"}, "github_webhook_secret": {"env": "C_GITHUB"},
             "health_report": "health_report.json", "rate_limit_burst": 100_000}  # fmt: skip
    with pytest.MonkeyPatch.context() as env:
        for name, value in (("C_TOKEN", TOKEN), ("C_MLFLOW", MLFLOW_SECRET), ("C_GITHUB", GITHUB_SECRET)):
            env.setenv(name, value if isinstance(value, str) else value.decode())
        config = parse_config({"integrations": [entry]}, folder).integrations[0]
        writer = RecordingWriter(config.spool)
        client = TestClient(create_app(config, writer, wall_clock=lambda: float(NOW_S)))
        client.writer = writer
        client.document = client.get("/openapi.json").json()
        yield client
        writer.close()


def documented(document: dict, method: str, path: str) -> set[int]:
    """The statuses the OpenAPI document lists for the operation serving ``path``."""
    bare = path.split("?")[0]
    for template, operations in document["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), bare) and method.lower() in operations:
            return {int(status) for status in operations[method.lower()]["responses"]}
    raise AssertionError(f"{method} {bare} is not in the document")


def echoed(request: Case, answer: str, fields: list[str]) -> list[str]:
    """Fragments of the request (16-character runs of its body with a letter or digit, and its header values
    of 8 characters or more) that the answer repeats, besides the names of the ``fields`` it names."""
    for name in sorted(fields, key=len, reverse=True):  # a field is named, its name is no echo
        answer = answer.replace(name, " ").replace(name.rpartition(".")[2], " ")
    text = (request.body or b"")[:8192].decode("utf-8", "replace")
    runs = {text[i : i + 16] for i in range(max(0, len(text) - 15))}
    found = [run for run in runs if any(c.isalnum() for c in run) and run in answer]
    framing = {"content-type", "content-length", "transfer-encoding"}
    for name, value in request.headers.items():
        value = value.decode("latin-1") if isinstance(value, bytes) else value
        if name.lower() not in framing and len(value) >= 8 and value in answer:
            found.append(value)
    return found


def send(client: TestClient, case: Case):
    body = case.body
    if case.chunked and body is not None:
        body = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
    return client.request(case.method, case.path, content=body, headers=case.headers)


@pytest.mark.parametrize("name", CORPUS)
def test_each_bad_request_gets_its_documented_4xx_naming_the_field_echoing_nothing(client, name):
    case = CORPUS[name]
    stored = len(client.writer.entries)
    answer = send(client, case)
    assert answer.status_code == case.status, answer.text[:2000]
    assert answer.status_code in documented(client.document, case.method, case.path)
    assert answer.status_code < 500
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert isinstance(body["error"], str)
    fields = [detail["field"] for detail in body.get("details", [])]
    if case.field is not None:
        wanted = case.field
        named = any(f.startswith(wanted[:-1]) for f in fields) if wanted.endswith("*") else wanted in fields
        assert named, (wanted, fields)
    assert not echoed(case, answer.text, fields)
    if case.status == 401 and "Authorization" in fields:
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert len(client.writer.entries) == stored  # nothing of it was handed to the spool


def test_the_corpus_covers_every_route_and_the_issue_s_cases():
    assert len(CORPUS) >= 152
    routes = {(case.method, case.path.split("?")[0]) for case in CORPUS.values()}
    assert {("POST", p) for p in (METRICS, EVENTS, USERS, HOOKS, MLFLOW, GITHUB)} <= routes
    for must in ("metrics: timestamp false", "user-sync: timestamp false", "events: depth 100,000",
                 "github signed: depth 100,000", "mlflow signed: not JSON", "github signed: not JSON",
                 "metrics: Content-Length and Transfer-Encoding"):  # fmt: skip
        assert must in CORPUS


def test_the_corpus_s_valid_counterparts_are_accepted(client):
    """The harness refuses for the stated reason only: the same requests, made valid, are accepted."""
    stored = len(client.writer.entries)
    accepted = [
        client.post(METRICS, json=metrics(), headers=AUTH),
        client.post(METRICS, json=metrics(timestamp="2026-11-28T00:00:00.5+01:00"), headers=AUTH),
        client.post(METRICS, json=metrics(timestamp=NOW_S + 86_400), headers=AUTH),  # the edge: a day ahead
        client.post(METRICS, content=encoded(metrics()),
                    headers={**AUTH, "Content-Type": "Application/JSON; charset=utf-8"}),
        client.post(EVENTS, json=event(timestamp="2016-12-31T23:59:60Z"), headers={**AUTH, "Idempotency-Key": "k-1"}),
        client.post(USERS, json=users(), headers={"Authorization": f"bearer {TOKEN}"}),
    ]  # fmt: skip
    assert [answer.status_code for answer in accepted] == [202] * len(accepted), [a.text for a in accepted]
    mlflow = (TESTDATA / "mlflow_model_version_created.json").read_bytes()
    ok = client.post(MLFLOW, content=mlflow, headers=mlflow_headers(mlflow, "corpus-valid"))
    assert ok.status_code == 200, ok.text
    github = (TESTDATA / "github_workflow_run_completed_failure.json").read_bytes()
    ok = client.post(GITHUB, content=github, headers=github_headers(github))
    assert ok.status_code == 200, ok.text
    assert len(client.writer.entries) == stored + len(accepted) + 2


def test_the_document_s_latest_timestamp_is_accepted_and_the_next_refused(client):
    """The moving bound (now + max_future_s), with the app's clock fixed: what the document states holds."""
    body = client.document["paths"][METRICS]["post"]["requestBody"]["content"]["application/json"]["schema"]
    numbers = [member for member in body["properties"]["timestamp"]["anyOf"] if member.get("type") == "number"]
    assert [member["minimum"] for member in numbers] == [0, 10**11, 10**14, 10**17]
    latest_ms = NOW_MS + 86_400_000
    assert [member["maximum"] for member in numbers] == [latest_ms / 1000, latest_ms, latest_ms * 1000,
                                                         latest_ms * 1_000_000]  # fmt: skip
    for member in numbers:
        at_max = client.post(METRICS, json=metrics(timestamp=member["maximum"]), headers=AUTH)
        assert at_max.status_code == 202, at_max.text
        step = 1 if isinstance(member["maximum"], int) else 0.001
        past = client.post(METRICS, json=metrics(timestamp=member["maximum"] + step), headers=AUTH)
        assert past.status_code == 400 and past.json()["details"][0]["field"] == "timestamp"
    text = next(member for member in body["properties"]["timestamp"]["anyOf"] if member.get("type") == "string")
    assert text["format"] == "date-time"


# --------------------------------------------------------------------------- a real process, raw sockets

BIG = 200 * 1024 * 1024
BLOCK = b" " * (1024 * 1024)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("live-corpus")
    settings = {
        "tokens": [{"name": "ci", "token": {"env": "LIVE_TOKEN"}}],
        "mlflow_webhook_secret": {"env": "LIVE_MLFLOW"},
        "github_webhook_secret": {"env": "LIVE_GITHUB"},
    }
    env = {"LIVE_TOKEN": TOKEN, "LIVE_MLFLOW": MLFLOW_SECRET.decode(), "LIVE_GITHUB": GITHUB_SECRET.decode()}
    gateway = LiveGateway(folder, settings, env)
    yield gateway
    gateway.stop()


class Exchange:
    """One request on a raw socket: ``head`` sent at once, then ``body`` (an iterable of bytes) while the
    answer is read; sending stops when the server closes, or (``to_the_end`` false) when the answer is
    complete. ``answered_at_byte``: how much of the body had been sent when the answer was complete."""

    def __init__(self, port: int, head: bytes, body=(), timeout_s: float = 60.0, to_the_end: bool = False):
        self.answer, self.sent, self.closed = b"", 0, False
        self.answered_at_byte: int | None = None
        self._done = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        try:
            self.sock.sendall(head)
            reader = threading.Thread(target=self._read, daemon=True)
            reader.start()
            for chunk in body:
                if self._done.is_set() and not to_the_end:
                    break
                try:
                    self.sock.sendall(chunk)
                except OSError:  # the server answered and closed
                    break
                self.sent += len(chunk)
            reader.join(timeout_s)
        finally:
            self.sock.close()

    def _read(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    break
                self.answer += chunk
                if self._complete():
                    break
        except OSError:
            self.closed = True
        finally:
            self.answered_at_byte = self.sent
            self._done.set()

    def _complete(self) -> bool:
        head, separator, body = self.answer.partition(b"\r\n\r\n")
        if not separator:
            return False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return len(body) >= int(value)
        return True

    @property
    def status(self) -> int | None:
        if not self.answer.startswith(b"HTTP/1.1 "):
            return None
        return int(self.answer[9:12])

    @property
    def json(self) -> dict:
        return json.loads(self.answer.partition(b"\r\n\r\n")[2])


def head(path: str, headers: dict) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(total: int):
    """``total`` bytes of chunked body in 1 MiB chunks, then the last chunk; nothing held but one block."""
    frame = f"{len(BLOCK):x}\r\n".encode() + BLOCK + b"\r\n"
    for _ in range(total // len(BLOCK)):
        yield frame
    yield b"0\r\n\r\n"


def plain(total: int):
    for _ in range(total // len(BLOCK)):
        yield BLOCK


def stored_anywhere(gateway: LiveGateway, marker: bytes) -> bool:
    spool = gateway.folder / "spool"
    return any(marker in path.read_bytes() for path in spool.rglob("*") if path.is_file())


def reset_peak(gateway: LiveGateway) -> None:
    Path(f"/proc/{gateway.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


JSON_TYPE = {"Content-Type": "application/json"}
SIGNATURE = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"}
MLFLOW_SIGNED = {"X-MLflow-Signature": "v1,AAAA", "X-MLflow-Delivery-Id": "big", "X-MLflow-Timestamp": "0"}
#: name -> (path, headers, chunked (else Content-Length: 200 MB), the status): 401/403 come from the headers
#: (before the body is read), 413 from Content-Length or after max_body_bytes of a chunked body.
BIG_BODIES = {
    "github, no signature, chunked": (GITHUB, JSON_TYPE, True, 403),
    "github, no signature, Content-Length": (GITHUB, JSON_TYPE, False, 403),
    "github, wrong signature, chunked": (GITHUB, {**JSON_TYPE, **SIGNATURE}, True, 413),
    "github, wrong signature, Content-Length": (GITHUB, {**JSON_TYPE, **SIGNATURE}, False, 413),
    "mlflow, signature, chunked": (MLFLOW, {**JSON_TYPE, **MLFLOW_SIGNED}, True, 413),
    "metrics, no token, chunked": (METRICS, JSON_TYPE, True, 401),
    "metrics, no token, Content-Length": (METRICS, JSON_TYPE, False, 401),
    "metrics, token, chunked": (METRICS, {**JSON_TYPE, **AUTH}, True, 413),
    "metrics, token, Content-Length": (METRICS, {**JSON_TYPE, **AUTH}, False, 413),
    "user-sync, token, chunked": (USERS, {**JSON_TYPE, **AUTH}, True, 413),
    "webhooks, no token, chunked": (HOOKS, JSON_TYPE, True, 401),
}
MEMORY: dict[str, dict[str, float]] = {}  # the figures measured, MB


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", BIG_BODIES)
def test_a_200_mb_body_is_refused_within_50_mb_of_memory(live, name):
    path, headers, is_chunked, status = BIG_BODIES[name]
    framing = {"Transfer-Encoding": "chunked"} if is_chunked else {"Content-Length": str(BIG)}
    before = live.memory_mb()
    reset_peak(live)
    body = chunked(BIG) if is_chunked else plain(BIG)
    exchange = Exchange(live.port, head(path, {**headers, **framing}), body, to_the_end=True)
    after = live.memory_mb()
    MEMORY[name] = {"rss_before": before["VmRSS"], "rss_after": after["VmRSS"], "peak": after["VmHWM"]}
    print(
        f"{name}: VmRSS {before['VmRSS']:.1f} -> {after['VmRSS']:.1f} MB, peak {after['VmHWM']:.1f} MB; "
        f"answered after {exchange.answered_at_byte / 2**20:.0f} MiB, {exchange.sent / 2**20:.0f} MiB sent"
    )
    assert exchange.status == status, exchange.answer[:500]
    assert exchange.json["details"][0]["field"] in {"(body)", "Authorization", "X-Hub-Signature-256"}
    assert after["VmHWM"] - before["VmRSS"] < 50, MEMORY[name]
    assert exchange.answered_at_byte < BIG  # answered before the body ended; the rest was read and dropped


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "path, headers, status",
    [
        (METRICS, JSON_TYPE, 401),
        (EVENTS, {**JSON_TYPE, "Authorization": "Bearer wrong"}, 401),
        (USERS, JSON_TYPE, 401),
        (HOOKS, JSON_TYPE, 401),
        (GITHUB, JSON_TYPE, 403),
        (MLFLOW, JSON_TYPE, 403),
        (METRICS, {**JSON_TYPE, **AUTH}, 413),
        (GITHUB, {**JSON_TYPE, **SIGNATURE}, 413),
    ],
)
def test_refused_from_the_headers_alone_without_the_body_being_sent(live, path, headers, status):
    exchange = Exchange(live.port, head(path, {**headers, "Content-Length": str(BIG)}), timeout_s=10)
    assert exchange.sent == 0 and exchange.status == status, exchange.answer[:500]


FRAMINGS = {
    "Content-Length and Transfer-Encoding": lambda body: (
        {"Content-Length": str(len(body)), "Transfer-Encoding": "chunked"}, _chunk(body)),
    "Transfer-Encoding and Content-Length": lambda body: (
        {"Transfer-Encoding": "chunked", "Content-Length": "3"}, _chunk(body)),
    "two Content-Lengths": lambda body: ({"Content-Length": f"{len(body)}\r\nContent-Length: 3"}, body),
    "Content-Length with a sign": lambda body: ({"Content-Length": f"+{len(body)}"}, body),
    "Transfer-Encoding not chunked last": lambda body: ({"Transfer-Encoding": "chunked, identity"}, _chunk(body)),
}  # fmt: skip


def _chunk(body: bytes) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("framing", FRAMINGS)
def test_ambiguous_framing_is_refused_and_nothing_stored(live, framing):
    marker = f"framing-{abs(hash(framing)):x}".encode()
    body = encoded(metrics(source=marker.decode()))
    headers, sent = FRAMINGS[framing](body)
    exchange = Exchange(live.port, head(METRICS, {**JSON_TYPE, **AUTH, **headers}) + sent, timeout_s=10)
    # uvicorn's parser refuses most of these itself (400 "Invalid HTTP request received.", or a closed
    # connection); what reaches the app is the app's 400 naming Transfer-Encoding or Content-Length.
    assert exchange.status is None or exchange.status == 400, exchange.answer[:500]
    if exchange.status == 400 and b"application/json" in exchange.answer.partition(b"\r\n\r\n")[0]:
        assert exchange.json["details"][0]["field"] in {"Transfer-Encoding", "Content-Length"}
    time.sleep(0.2)  # a 2xx would have come after the fsync; nothing may be in the spool
    assert not stored_anywhere(live, marker)
    ok = Exchange(live.port, head(METRICS, {**JSON_TYPE, **AUTH, "Content-Length": str(len(body))}) + body)
    assert ok.status == 202  # the same body, framed once, is stored
    assert stored_anywhere(live, marker)
    assert not live.errors_logged()
