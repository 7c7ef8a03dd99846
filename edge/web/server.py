"""Serving the web app: inside the daemon (a thread) or alone (``edge web``).

uvicorn with its pure-Python HTTP parser (h11) and no extras: one asyncio loop, page work in
Starlette's thread pool. The socket is bound here, before uvicorn starts, so a port in use
is a one-line error at start-up rather than a dead thread. uvicorn keeps its hands off the
process: no logging configuration, and no signal handlers, since it always runs in a thread
of its own (the daemon, or ``edge web``, handles SIGTERM and stops it).

Start-up refusals (:func:`check_web`): a ``listen`` address other than loopback while no
password is set, and TLS files that do not exist.

Slow clients: uvicorn serves at most 64 connections at once (``limit_concurrency``; 503 beyond)
and by itself waits forever for a request's headers, so a few dozen connections that never
finish theirs (a "slowloris") would lock everyone out without a password. :class:`GuardedH11`
closes a connection whose request line and headers have not arrived
:data:`HEADER_TIMEOUT_S` after it opened (or after its previous answer), and refuses a client
address more than :data:`CONNECTIONS_PER_CLIENT` connections at once (browsers open up to 6).
A body may arrive slowly (an upload over weak Wi-Fi takes its time) but not stop: a connection
that sends none of its request body for :data:`BODY_IDLE_S` is closed, unless the server itself
has paused reading it (the app has not yet taken what came).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import threading
from pathlib import Path

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from edge.daemon.config import Config, WebConfig
from edge.errors import ConfigError
from edge.web import auth
from edge.web.live import LiveView
from edge.web.recorder import VisitRecorder

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_web(w: WebConfig) -> None:
    """Refuse to start (ConfigError, one line naming the key) on an unsafe or broken setup."""
    host, _ = w.address()
    if not is_loopback(host) and auth.read_password_hash(w.password_file) is None:
        raise ConfigError(
            f"web.listen: {w.listen} is reachable from other machines but no web password is "
            f"set ({w.password_file}); run 'edge web-password --config FILE' first"
        )
    for key in ("tls_cert", "tls_key"):
        path = getattr(w, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"web.{key}: file not found: {path}")


#: Seconds a connection may take to send a request's line and headers (see module docstring).
HEADER_TIMEOUT_S = 10.0
#: Seconds a request body may pause between two of its pieces (see module docstring).
BODY_IDLE_S = 30.0
#: Connections one client address may hold at once.
CONNECTIONS_PER_CLIENT = 16


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with the three limits of the module docstring."""

    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if (
            host is not None
            and sum(1 for c in self.connections if c.client and c.client[0] == host)
            > CONNECTIONS_PER_CLIENT
        ):
            log.warning(
                "web: %s holds over %d connections: one refused", host, CONNECTIONS_PER_CLIENT
            )
            transport.close()
            return
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.SEND_BODY:  # headers in, the body still coming
            self._arm(BODY_IDLE_S, self._body_stalled)
        elif self.conn.their_state is not h11.IDLE:  # the whole request arrived
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_headers()  # the next request on this connection gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._arm(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _arm(self, seconds: float, callback) -> None:
        self._stop_waiting()
        self._timer = self.loop.call_later(seconds, callback)

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_too_slow(self) -> None:
        self._timer = None
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            log.info(
                "web: %s sent no complete request in %.0f s: closed", self.client, HEADER_TIMEOUT_S
            )
            self.transport.close()

    def _body_stalled(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:  # the app has not taken what came: not the client's pause
            self._arm(BODY_IDLE_S, self._body_stalled)
            return
        log.info(
            "web: %s sent none of its request body for %.0f s: closed", self.client, BODY_IDLE_S
        )
        self.transport.close()


class WebServer:
    """The web app for one config; ``live=True`` when a camera feeds it (``edge run``)."""

    def __init__(self, cfg: Config, live: bool) -> None:
        from edge.daemon.loop import recognizer_from_config
        from edge.web.app import WebContext, create_app
        from edge.web.library import FaceLibrary
        from edge.web.sessions import SessionStore
        from edge.web.visits import VisitStore

        w = cfg.web
        check_web(w)
        library = FaceLibrary(cfg.recognition.gallery, recognizer_from_config(cfg))
        self.ctx = WebContext(
            cfg=w,
            library=library,
            visits=VisitStore(w.visits, w.retention_days),
            live=LiveView() if live else None,
            token=auth.ensure_token(w.token_file),
            sessions=SessionStore(idle_s=w.session_hours * 3600),
            limiter=auth.LoginLimiter(),
            secure=bool(w.tls_cert),
        )
        self.recorder = (
            VisitRecorder(self.ctx.live, self.ctx.visits, library) if self.ctx.live else None
        )
        self.host, self.port = w.address()
        config = uvicorn.Config(
            create_app(self.ctx),
            log_config=None,
            access_log=False,
            server_header=False,
            lifespan="off",
            http=GuardedH11,
            loop="asyncio",
            ws="none",
            proxy_headers=False,
            limit_concurrency=64,
            timeout_keep_alive=5,
            ssl_certfile=w.tls_cert or None,
            ssl_keyfile=w.tls_key or None,
        )
        try:
            config.load()  # reads the TLS files now: errors at start-up, not in a thread
        except (OSError, ValueError) as exc:
            raise ConfigError(f"web.tls_cert: cannot use {w.tls_cert}: {exc}") from None
        self.server = uvicorn.Server(config)
        self.socket = _bind(self.host, self.port, w.listen)
        self.port = self.socket.getsockname()[1]  # the real one when listen ends in :0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ctx.secure else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> None:
        """Serve from a thread (the daemon's case); returns once it accepts connections."""
        if self.recorder is not None:
            self.recorder.start()
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="web", daemon=True
        )
        self._thread.start()
        for _ in range(200):
            if self.server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.05)
        log.info("web app on %s", self.url)

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (``edge web``): the same thread as in the daemon, while
        the main thread waits for the signal; exit status 0 on a clean stop."""
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        print(f"web app on {self.url} (Ctrl-C stops)", flush=True)
        while not stop.wait(1.0) and self._thread is not None and self._thread.is_alive():
            pass
        self.stop()
        return 0

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self.recorder is not None:
            self.recorder.stop(timeout)
        self.ctx.visits.close()


def _bind(host: str, port: int, listen: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every keep-alive response waited 40 ms for a delayed ACK (measured)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"web.listen: cannot listen on {listen}: {exc.strerror}") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock
