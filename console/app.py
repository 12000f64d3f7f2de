"""The console's HTTP app (FastAPI): pages, GraphQL, Slack interactivity.

Routes:

- ``GET /login``, ``POST /login`` (form field ``token``), ``POST /logout``: the page session
  (:mod:`console.sessions`)
- ``GET /alerts``: firing, pending and recently resolved alerts, filtered by ``severity``, ``team``,
  ``model``, ``rule``, ``state`` (query parameters), counts by state, ``offset`` pages
- ``GET /dashboard?alert=ID``: one alert (the spec's "View Dashboard" link): chart, context, notifications
  and deliveries; ``POST /alerts/{id}/acknowledge`` (admin)
- ``GET /integrations``: the integration health dashboard
- ``GET /silences``, ``POST /silences`` (create), ``POST /silences/{id}/expire`` (admin)
- ``POST /graphql``: the GraphQL API (:mod:`console.graphql_api`, schema in ``console/schema.graphql``)
- ``POST /slack/interactivity``: Slack's signed interactivity requests (the Acknowledge button)
- ``GET /healthz`` (no auth, no data), ``GET /static/...`` (the stylesheet)

Every page and query needs a signed-in session or ``Authorization: Bearer TOKEN`` (a page without one
redirects to ``/login``; the API answers 401). State-changing requests made with the session cookie need the
session's CSRF token and a same-origin ``Origin``. Pages run no script at all: the Content-Security-Policy
forbids every script, and the chart is inline SVG drawn on the server (:mod:`console.chart`), so nothing the
store holds (tags, messages) can run in the browser. Nothing secret is rendered: no token, no sink URL or
key, no session id (it is an ``HttpOnly`` cookie).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from airis_mon.config import Config
from airis_mon.silence_store import SilenceStore, StoredSilence, format_matcher, parse_matcher, silence_status
from console.records import ALERT_STATES, AlertDetail, AlertFilter, Principal
from console.sessions import SESSION_COOKIE, SessionStore, TokenBook, csrf_matches, origin_of, same_origin
from transforms.rules.config import SCORE_ALERT_TYPES

__all__ = ["ConsoleServices", "create_app"]

LOG = logging.getLogger("airis_mon.console")

#: The alert list shows this many per page.
PAGE_SIZE = 100
#: Resolved alerts this recent are listed by default, ms (7 days).
RECENT_RESOLVED_MS = 7 * 86_400_000
#: Slack sends small bodies; anything larger is refused before it is read in full, bytes.
MAX_FORM_BYTES = 64 * 1024
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class ConsoleServices:
    """What the app works on: the store (:class:`console.queries.ConsoleStore`), the acknowledger
    (:class:`console.acknowledgements.Acknowledger`), the silence store (``None``: read-only from config),
    and Slack interactivity (``None`` when ``console.slack`` is not configured)."""

    def __init__(self, store: Any, acknowledger: Any, silences: SilenceStore | None, slack: Any | None = None):
        self.store = store
        self.acknowledger = acknowledger
        self.silences = silences
        self.slack = slack


class _SignInRequiredError(Exception):
    """A page asked for without a session: redirect to the sign-in page."""


class _RefusedError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _environment() -> Environment:
    from sinks.delivery.links import format_duration, format_utc, format_value

    env = Environment(loader=PackageLoader("console", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["utc"] = lambda ms: format_utc(int(ms)) if ms else "-"
    env.filters["duration"] = lambda s: format_duration(float(s)) if s is not None else "-"
    env.filters["value"] = lambda v: format_value(float(v)) if v is not None and not _nan(v) else "-"
    env.filters["ms"] = lambda v: f"{v:,.0f} ms" if v is not None else "-"
    return env


def _nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _safe_next(target: str | None) -> str:
    """A sign-in's ``next``: a path on this site only (no scheme, no ``//host``), else ``/alerts``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/alerts"
    return target


def create_app(config: Config, services: ConsoleServices, clock: Callable[[], float] = time.time) -> FastAPI:
    """The console app for ``config.console``; ``clock`` (epoch s) drives sessions and "now"."""
    console = config.console
    if console is None:
        raise ValueError("the config has no console: section")
    app = FastAPI(title="AIRIS-MON console", version="1.0.0", docs_url=None, redoc_url=None, openapi_url=None)
    book = TokenBook(console.tokens)
    sessions = SessionStore(console.session_ttl_s, clock)
    templates = _environment()
    secure_cookie = console.public_url.startswith("https://")
    origins = {origin_of(console.public_url), f"http://{console.host}:{console.port}"}
    app.mount("/static", StaticFiles(packages=[("console", "static")]), name="static")

    def now_ms() -> int:
        return int(clock() * 1000)

    def session_of(request: Request):
        return sessions.get(request.cookies.get(SESSION_COOKIE))

    def principal_of(request: Request) -> Principal | None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and presented.strip():
            return book.principal_for(presented.strip(), via="bearer")
        session = session_of(request)
        return session.principal if session else None

    def page_principal(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise _SignInRequiredError()
        return principal

    async def checked_form(request: Request, principal: Principal, admin: bool = True) -> dict[str, str]:
        """The form of a state-changing page request, after the CSRF and origin checks (and the role)."""
        form = await _small_form(request)
        if principal.via == "session":
            session = session_of(request)
            if session is None or not csrf_matches(session, form.get("csrf_token")):
                raise _RefusedError(403, "missing or wrong CSRF token; reload the page", "csrf_token")
            if not same_origin(request.headers.get("origin"), origins):
                raise _RefusedError(403, "cross-origin request refused", "Origin")
        if admin and not principal.is_admin:
            raise _RefusedError(403, "this needs an admin token", "role")
        return form

    def render(request: Request, name: str, principal: Principal | None, status: int = 200, **context) -> Response:
        session = session_of(request)
        html = templates.get_template(name).render(
            principal=principal,
            csrf_token=session.csrf_token if session else "",
            now_ms=now_ms(),
            request_path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)

    @app.exception_handler(_SignInRequiredError)
    async def _to_sign_in(request: Request, _: _SignInRequiredError) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303, headers=_SECURITY_HEADERS)

    @app.exception_handler(_RefusedError)
    async def _refused(request: Request, error: _RefusedError) -> Response:
        if request.url.path.startswith(("/graphql", "/slack")) or "text/html" not in request.headers.get("accept", ""):
            body = {"error": error.message, **({"field": error.field} if error.field else {})}
            return JSONResponse(body, status_code=error.status, headers=_SECURITY_HEADERS)
        return render(request, "error.html", principal_of(request), status=error.status, message=error.message,
                      field=error.field)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=_SECURITY_HEADERS)

    @app.get("/healthz")
    def healthz() -> Response:
        return JSONResponse({"status": "ok"}, headers=_SECURITY_HEADERS)

    @app.get("/")
    def index() -> Response:
        return RedirectResponse("/alerts", status_code=303, headers=_SECURITY_HEADERS)

    # -- sign-in -------------------------------------------------------------------------------------------

    @app.get("/login")
    def login_page(request: Request, next: str = "/alerts") -> Response:
        return render(request, "login.html", None, next=_safe_next(next), error=None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        if not same_origin(request.headers.get("origin"), origins):
            raise _RefusedError(403, "cross-origin sign-in refused", "Origin")
        form = await _small_form(request)
        target = _safe_next(form.get("next"))
        principal = book.principal_for(form.get("token", "").strip(), via="session")
        if principal is None:
            LOG.info("console sign-in refused from %s", request.client.host if request.client else "?")
            return render(request, "login.html", None, status=401, next=target, error="That token is not valid.")
        session_id, _ = sessions.create(principal)
        LOG.info("console sign-in: %s (%s)", principal.name, principal.role)
        response = RedirectResponse(target, status_code=303, headers=_SECURITY_HEADERS)
        response.set_cookie(SESSION_COOKIE, session_id, max_age=int(sessions.ttl_s), path="/", httponly=True,
                            samesite="strict", secure=secure_cookie)  # fmt: skip
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        principal = page_principal(request)
        await checked_form(request, principal, admin=False)
        sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303, headers=_SECURITY_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure_cookie)
        return response

    # -- alerts -----------------------------------------------------------------------------------------------

    @app.get("/alerts")
    def alerts_page(request: Request) -> Response:
        principal = page_principal(request)
        params = request.query_params
        chosen = {key: (params.get(key) or None) for key in ("severity", "team", "model", "rule", "state")}
        if chosen["state"] is not None and chosen["state"] not in ALERT_STATES:
            raise _RefusedError(400, f"state must be one of {', '.join(ALERT_STATES)}", "state")
        offset = _int_param(params.get("offset"), "offset")
        page = services.store.alerts(AlertFilter(**chosen, resolved_since_ms=now_ms() - RECENT_RESOLVED_MS,
                                                 limit=PAGE_SIZE, offset=offset))  # fmt: skip
        kept = {key: value for key, value in chosen.items() if value}
        return render(
            request, "alerts.html", principal, page=page, chosen=chosen, options=services.store.filter_options(),
            states=ALERT_STATES, offset=offset, page_size=PAGE_SIZE,
            state_link=lambda state: "/alerts?" + urlencode({**kept, "state": state} if state else
                                                            {k: v for k, v in kept.items() if k != "state"}),
            page_link=lambda at: "/alerts?" + urlencode({**kept, "offset": at}),
        )  # fmt: skip

    @app.get("/dashboard")
    def alert_page(request: Request, alert: str = "") -> Response:
        principal = page_principal(request)
        if not alert:
            raise _RefusedError(400, "which alert? /dashboard?alert=ID", "alert")
        detail = services.store.alert(alert)
        if detail is None:
            return render(request, "error.html", principal, status=404, message=f"No alert {alert!r} is stored.",
                          field="alert")  # fmt: skip
        from console.chart import chart_range, episode_chart

        start_ms, end_ms = chart_range(detail, now_ms())
        points = services.store.series(detail, start_ms, end_ms)
        spans = services.store.spans(detail)
        changes = services.store.changes(detail, start_ms, end_ms)
        # an ML monitor's threshold is on its score, not on the charted statistic: no line for it
        scored = detail.alert_type in SCORE_ALERT_TYPES
        threshold = detail.alert.threshold if not (scored or _nan(detail.alert.threshold)) else None
        chart = episode_chart(points, threshold, spans, changes, alert_id=detail.alert.id, start_ms=start_ms,
                              end_ms=end_ms, window_ms=detail.window_s * 1000)  # fmt: skip
        silence_query = urlencode({"matchers": "\n".join(_silence_matchers(detail)), "comment": f"{detail.alert.name}"})
        return render(request, "alert.html", principal, detail=detail, chart=chart, changes=changes,
                      deliveries=services.store.deliveries(detail.alert.id), start_ms=start_ms, end_ms=end_ms,
                      silence_link=f"/silences?{silence_query}", points=len(points))  # fmt: skip

    @app.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge(request: Request, alert_id: str) -> Response:
        principal = page_principal(request)
        await checked_form(request, principal)
        result = await run_in_threadpool(services.acknowledger.acknowledge, alert_id, principal.name, "console")
        if not result.found:
            raise _RefusedError(404, f"no alert {alert_id!r} is stored", "alert_id")
        await run_in_threadpool(services.store.refresh)  # the page shows it at once, not at the next refresh
        return RedirectResponse(f"/dashboard?alert={quote(alert_id, safe='')}", status_code=303,
                                headers=_SECURITY_HEADERS)  # fmt: skip

    # -- integration health -----------------------------------------------------------------------------------

    @app.get("/integrations")
    def integrations_page(request: Request) -> Response:
        principal = page_principal(request)
        return render(request, "integrations.html", principal, health=services.store.integration_health())

    # -- silences ------------------------------------------------------------------------------------------------

    @app.get("/silences")
    def silences_page(request: Request) -> Response:
        principal = page_principal(request)
        stored = services.silences.all() if services.silences else []
        now = now_ms()
        rows = sorted(((s, silence_status(s, now)) for s in stored), key=lambda row: (row[1] == "expired",
                                                                                         -row[0].ends_at))  # fmt: skip
        return render(request, "silences.html", principal, silences=rows, configured=config.silences,
                      writable=services.silences is not None, format_matcher=format_matcher,
                      prefill={"matchers": request.query_params.get("matchers", ""),
                               "comment": request.query_params.get("comment", "")})  # fmt: skip

    @app.post("/silences")
    async def create_silence(request: Request) -> Response:
        principal = page_principal(request)
        form = await checked_form(request, principal)
        if services.silences is None:
            raise _RefusedError(409, "silences are read-only here: no gateway silence store is configured", "silences")
        silence = _silence_from_form(form, principal.name, now_ms())
        await run_in_threadpool(services.silences.put, silence, now_ms())
        LOG.info("silence %s created by %s", silence.id, principal.name)
        return RedirectResponse("/silences", status_code=303, headers=_SECURITY_HEADERS)

    @app.post("/silences/{silence_id}/expire")
    async def expire_silence(request: Request, silence_id: str) -> Response:
        principal = page_principal(request)
        await checked_form(request, principal)
        if services.silences is None or await run_in_threadpool(services.silences.expire, silence_id, now_ms()) is None:
            raise _RefusedError(404, f"no silence {silence_id!r}", "silence_id")
        LOG.info("silence %s expired by %s", silence_id, principal.name)
        return RedirectResponse("/silences", status_code=303, headers=_SECURITY_HEADERS)

    # -- Slack ------------------------------------------------------------------------------------------------

    @app.post("/slack/interactivity")
    async def slack_interactivity(request: Request) -> Response:
        if services.slack is None:
            raise _RefusedError(404, "Slack interactivity is not configured (console.slack)")
        body = await _small_body(request)
        status, answer = await run_in_threadpool(services.slack.handle, body, request.headers)
        return JSONResponse(answer, status_code=status, headers=_SECURITY_HEADERS)

    _mount_graphql(app, services, principal_of, session_of, origins, now_ms)
    return app


def _mount_graphql(app: FastAPI, services: ConsoleServices, principal_of, session_of, origins, now_ms) -> None:
    """``/graphql``: Bearer token, or the session cookie plus the ``X-CSRF-Token`` header for every request
    (GET included: a query over GET with a cookie could otherwise be made by any page)."""
    from console.graphql_api import ConsoleContext, graphql_router

    async def context(request: Request) -> ConsoleContext:
        principal = principal_of(request)
        if principal is None:
            raise _RefusedError(401, "sign in or send Authorization: Bearer TOKEN", "Authorization")
        if principal.via == "session":
            session = session_of(request)
            if session is None or not csrf_matches(session, request.headers.get("x-csrf-token")):
                raise _RefusedError(403, "missing or wrong X-CSRF-Token header", "X-CSRF-Token")
            if not same_origin(request.headers.get("origin"), origins):
                raise _RefusedError(403, "cross-origin request refused", "Origin")
        return ConsoleContext(store=services.store, acknowledger=services.acknowledger, silences=services.silences,
                              principal=principal, now_ms=now_ms)  # fmt: skip

    app.include_router(graphql_router(context), prefix="/graphql")


def _int_param(value: str | None, field: str) -> int:
    if not value:
        return 0
    if not value.isdigit() or len(value) > 9:
        raise _RefusedError(400, f"{field} must be a whole number", field)
    return int(value)


async def _small_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise _RefusedError(413, f"request body over {MAX_FORM_BYTES} bytes", "Content-Length")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _RefusedError(413, f"request body over {MAX_FORM_BYTES} bytes", "Content-Length")
    return body


async def _small_form(request: Request) -> dict[str, str]:
    from urllib.parse import parse_qsl

    body = await _small_body(request)
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise _RefusedError(400, "the form is not UTF-8", "body") from None


def _silence_matchers(detail: AlertDetail) -> list[str]:
    """Matchers that silence this alert's rule and group (shown in the create form, editable)."""
    lines = [f'rule="{detail.alert.rule}"']
    lines += [f'{key}="{value}"' for key, value in sorted(detail.alert.group.items()) if key.isidentifier()]
    return lines


def _silence_from_form(form: dict[str, str], created_by: str, now_ms: int) -> StoredSilence:
    from airis_mon.durations import parse_duration_s

    matchers = []
    for number, line in enumerate(form.get("matchers", "").splitlines(), start=1):
        if line.strip():
            try:
                matchers.append(parse_matcher(line.strip()))
            except ValueError:
                raise _RefusedError(400, f"matcher on line {number} is not name=value, name!=value, name=~re or "
                                    "name!~re", "matchers") from None  # fmt: skip
    if not matchers:
        raise _RefusedError(400, "at least one matcher is needed", "matchers")
    try:
        duration_s = parse_duration_s(form.get("duration", "").strip() or "2h")
    except ValueError:
        raise _RefusedError(400, "duration must be like 30m, 2h or 1d", "duration") from None
    if duration_s <= 0 or duration_s > 366 * 86_400:
        raise _RefusedError(400, "duration must be between 1 s and a year", "duration")
    comment = form.get("comment", "").strip()
    if not comment:
        raise _RefusedError(400, "a comment is needed (why is it silenced?)", "comment")
    try:
        return StoredSilence(matchers=matchers, starts_at=now_ms, ends_at=now_ms + duration_s * 1000,
                             created_by=created_by, comment=comment[:4096])  # fmt: skip
    except ValueError as error:
        raise _RefusedError(400, f"invalid silence: {json.dumps(str(error))[:200]}", "matchers") from None
