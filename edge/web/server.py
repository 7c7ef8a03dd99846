"""Serving the web app: inside the daemon (a thread) or alone (``edge web``).

uvicorn with its pure-Python HTTP parser (h11) and no extras: one asyncio loop, page work in
Starlette's thread pool. The socket is bound here, before uvicorn starts, so a port in use
is a one-line error at start-up rather than a dead thread. uvicorn keeps its hands off the
process: no logging configuration, and no signal handlers, since it always runs in a thread
of its own (the daemon, or ``edge web``, handles SIGTERM and stops it).

Start-up refusals (:func:`check_web`): a ``listen`` address other than loopback while no
password is set, and TLS files that do not exist.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
from pathlib import Path

import uvicorn

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
            http="h11",
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
