"""The web app assembled: who may do what (:class:`Guard`), errors, pages and API routes.

Every route but ``/login`` and ``/static`` needs a signed-in session (pages: else a redirect
to the sign-in page) or, under ``/api``, either that or ``Authorization: Bearer <token>``
(else 401). Changes made with a session cookie must prove they come from our own pages: the
API checks the ``X-CSRF-Token`` header here, page forms their ``csrf`` field
(:func:`edge.web.pages.checked_form`), and any ``Origin`` or ``Sec-Fetch-Site`` header must
say same-origin. Bearer requests need no CSRF token: a browser never adds that header by
itself. Every response carries a strict Content-Security-Policy (our own scripts, styles and
images only), no-store caching and no referrer to other sites. Pages and API share the services
(:class:`~edge.web.library.FaceLibrary`, :class:`~edge.web.visits.VisitStore`); a refusal is
a :class:`~edge.web.errors.Problem`, shown as a page or as ``{"error": ...}`` JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.daemon.config import WebConfig
from edge.errors import DoorfaceError
from edge.web import auth
from edge.web.errors import Problem, as_problem
from edge.web.library import FaceLibrary
from edge.web.live import LiveView
from edge.web.sessions import COOKIE, CSRF_HEADER, Session, SessionStore
from edge.web.uploads import BodyLimit, BodyTooLarge
from edge.web.visits import VisitStore

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PUBLIC = ("/login", "/static/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" would make forms send Origin: null
]


@dataclass
class WebContext:
    """Everything a request may use; one per server (``request.app.state.ctx``)."""

    cfg: WebConfig
    library: FaceLibrary
    visits: VisitStore
    live: LiveView | None  # None: no camera in this process (`edge web`)
    token: str
    sessions: SessionStore
    limiter: auth.LoginLimiter
    secure: bool  # served over TLS
    _password_sig: tuple[int, int] | None = None

    def password_hash(self) -> str | None:
        return auth.read_password_hash(self.cfg.password_file)

    def authenticate(self, request: Request, api: bool) -> str | Session | None:
        """ "token" for a valid bearer token (API only), the signed-in Session, or None."""
        self._sign_out_on_password_change()
        header = request.headers.get("authorization", "")
        if api and header[:7].lower() == "bearer ":
            return "token" if auth.tokens_equal(header[7:].strip(), self.token) else None
        session = self.sessions.get(request.cookies.get(COOKIE))
        return session if session is not None and session.signed_in else None

    def _sign_out_on_password_change(self) -> None:
        signature = auth.password_signature(self.cfg.password_file)
        if signature != self._password_sig:
            if self._password_sig is not None:
                self.sessions.clear()
            self._password_sig = signature


class Guard:
    """ASGI middleware: sign-in, CSRF for the API, same-origin changes, security headers."""

    def __init__(self, app: ASGIApp, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        send = _with_headers(send, static=path.startswith("/static/"))
        if path == "/login" or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        api = path == "/api" or path.startswith("/api/")
        who = self.ctx.authenticate(request, api)
        if who is None:
            response = (
                JSONResponse(
                    {"error": "sign in, or send Authorization: Bearer <token>"},
                    401,
                    {"www-authenticate": "Bearer"},
                )
                if api
                else RedirectResponse("/login", 303)
            )
            await response(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and isinstance(who, Session):
            why = _cross_site(request) or (
                "missing or wrong X-CSRF-Token header"
                if api and not who.csrf_ok(request.headers.get(CSRF_HEADER))
                else ""
            )
            if why:
                await _problem_response(request, Problem(403, why))(scope, receive, send)
                return
        scope.setdefault("state", {})["auth"] = who
        await self.app(scope, receive, send)


def _cross_site(request: Request) -> str:
    """Why a change looks cross-site (an Origin or Sec-Fetch-Site header says so), or ""."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = request.headers.get("origin")
    if origin is not None:
        host = origin.split("://", 1)[-1]
        if host != request.headers.get("host"):
            return f"cross-site request refused (Origin: {origin})"
    return ""


def _with_headers(send: Send, static: bool) -> Send:
    cache = b"max-age=3600" if static else b"no-store"

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers += [*SECURITY_HEADERS, (b"cache-control", cache)]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


# -- errors --------------------------------------------------------------------------------
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def render(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """A page: the template with the session's CSRF token and one-time message."""
    session = request.scope.get("state", {}).get("auth")
    if not isinstance(session, Session):
        session = None
    flash = session.flash if session else ""
    if session:
        session.flash = ""
    html = _env.get_template(name).render(
        csrf=session.csrf if session else "",
        signed_in=session is not None,
        flash=flash,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, code)


def _problem_response(request: Request, problem: Problem) -> Response:
    if request.url.path.startswith("/api"):
        return JSONResponse({"error": str(problem)}, problem.status)
    return render(
        request,
        "error.html",
        problem.status,
        title="Not done",
        status=problem.status,
        message=problem,
    )


async def _on_doorface_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DoorfaceError)
    return _problem_response(request, as_problem(exc))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _problem_response(request, Problem(exc.status_code, str(exc.detail)))


async def _on_too_large(request: Request, exc: Exception) -> Response:
    limit = request.app.state.ctx.cfg.max_upload_bytes
    return _problem_response(request, Problem(413, f"request body over {limit} bytes"))


async def _on_client_gone(request: Request, exc: Exception) -> Response:
    # the client hung up while sending its body: nobody is left to answer, so one log line
    # instead of Starlette's traceback; the answer below goes nowhere
    log.info("web: %s %s: the client disconnected mid-request", request.method, request.url.path)
    return Response(status_code=400)


def create_app(ctx: WebContext) -> Starlette:
    from edge.web import api, pages

    app = Starlette(
        routes=[
            *pages.routes(),
            Mount("/api", routes=api.routes()),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[  # outermost first: no body is read before its sender is known
            Middleware(Guard, ctx=ctx),
            Middleware(BodyLimit, max_bytes=ctx.cfg.max_upload_bytes),
        ],
        exception_handlers={
            DoorfaceError: _on_doorface_error,
            HTTPException: _on_http_error,
            BodyTooLarge: _on_too_large,
            ClientDisconnect: _on_client_gone,
        },
    )
    app.state.ctx = ctx
    return app
