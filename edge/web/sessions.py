"""Browser sessions and their CSRF tokens, held in memory.

A session is a random 256-bit id in a cookie (HttpOnly, SameSite=Strict, Secure under TLS,
no Max-Age: it ends with the browser) and a server-side record with its CSRF token. The sign-in
page gets a session before sign-in, so the sign-in form is CSRF-checked too; signing in
replaces it with a new id (no session fixation). Every change a page makes sends the session's
CSRF token (a form field, or the ``X-CSRF-Token`` header for scripts), compared in constant
time. Held in memory on purpose: a restart signs everyone out, and nothing about sessions is
written to the SD card. Sessions expire after ``idle_s`` unused; at most ``max_sessions`` are
kept (the least recently used go first, sessions not signed in before signed-in ones), so a
flood of sign-in page loads can neither grow memory nor sign anyone out. (During such a flood
a sign-in form may expire before it is sent: the page says so and the next try works once the
flood stops.)
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

COOKIE = "doorface_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass
class Session:
    id: str
    csrf: str
    signed_in: bool
    last_seen: float
    flash: str = ""  # a one-time message for the next page ("Enrolled Alice: 3 photos")

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token).encode(), self.csrf.encode())


class SessionStore:
    def __init__(self, idle_s: float, max_sessions: int = 200) -> None:
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sid: str | None) -> Session | None:
        """The live session of this id (its use noted), or None."""
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.last_seen > self.idle_s:
                del self._sessions[sid]
                return None
            session.last_seen = now
            self._sessions.move_to_end(sid)
            return session

    def new(self, signed_in: bool = False, replacing: str | None = None) -> Session:
        """A fresh session; ``replacing`` is dropped (sign-in gets a new id)."""
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), signed_in, time.monotonic()
        )
        with self._lock:
            if replacing:
                self._sessions.pop(replacing, None)
            while len(self._sessions) >= self.max_sessions:
                self._sessions.pop(self._least_needed(session.last_seen))
            self._sessions[session.id] = session
        return session

    def _least_needed(self, now: float) -> str:
        """The session to drop for a new one: the least recently used that has expired or is
        not signed in (anyone can make those by loading the sign-in page), else the least
        recently used."""
        for sid, session in self._sessions.items():  # least recently used first
            if not session.signed_in or now - session.last_seen > self.idle_s:
                return sid
        return next(iter(self._sessions))

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def clear(self) -> None:
        """Sign everyone out (the password changed)."""
        with self._lock:
            self._sessions.clear()

    def __len__(self) -> int:
        return len(self._sessions)


def cookie_options(secure: bool) -> dict:
    """``Response.set_cookie`` keywords for the session cookie."""
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/"}
