"""Sign-in secrets: the password's scrypt hash, the API bearer token, the sign-in rate limit.

The password is stored only as ``scrypt$<log2 n>$<r>$<p>$<salt>$<key>`` (base64, one line, mode
0600, written atomically by ``edge web-password``). scrypt from the standard library
(``hashlib.scrypt``, OpenSSL's) with n = 2^14, r = 8, p = 1: the scrypt paper's interactive
sign-in setting, 16 MiB and tens of milliseconds per guess on a desktop core, a few hundred on
a Pi. A stronger n (OWASP's 2^17 takes 128 MiB) would not fit the web app's 40 MB budget on a
1 GB Pi; the parameters travel in the line, so they can be raised later without breaking old
hashes. Guessing is slowed further by :class:`LoginLimiter`.

The API token is 32 random bytes (URL-safe base64) in ``token_file``, mode 0600, made on the
first start. Every comparison of a secret is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path

from edge.errors import ConfigError
from edge.files import FileError, FileMissingError, read_regular
from edge.manifest import write_bytes_atomic

SECRET_MODE = 0o600
MAX_SECRET_BYTES = 64_000  # a password hash or token file is under 200 bytes
MIN_PASSWORD = 8
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 14, 8, 1
_MAXMEM = 160 * 1024 * 1024  # scrypt needs 128 * r * n bytes: 16 MiB here, 128 MiB at most
_ONE_AT_A_TIME = threading.Lock()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The line stored in ``password_file`` for ``password``."""
    salt = salt or secrets.token_bytes(16)
    key = _scrypt(password, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_LOG2_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` hashes to ``stored``; False for a wrong one or a malformed line."""
    try:
        kind, log2_n, r, p, salt, key = stored.strip().split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        got = _scrypt(password, base64.b64decode(salt, validate=True), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    """One hash at a time (its 16 MiB are the web app's largest allocation after images)."""
    if not (10 <= log2_n <= 16 and 1 <= r <= 16 and 1 <= p <= 4):
        raise ValueError("scrypt parameters out of range")
    with _ONE_AT_A_TIME:
        return hashlib.scrypt(
            password.encode(), salt=salt, n=1 << log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=32
        )


def write_password(path: str | Path, password: str) -> None:
    """Store the hash of ``password`` (ConfigError naming web.password_file if it cannot)."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"web password: at least {MIN_PASSWORD} characters, please")
    try:
        password.encode()
    except UnicodeEncodeError:  # bytes that were not UTF-8 reach here as lone surrogates
        raise ConfigError("web password: not UTF-8 text; nothing changed") from None
    _write_secret(Path(path), hash_password(password) + "\n", "web.password_file")


def read_password_hash(path: str | Path) -> str | None:
    """The stored hash line, or None when no password is set (no file, or an empty one)."""
    return _read_secret(Path(path), "web.password_file") or None


#: The shortest token accepted from a file someone wrote (the ones made here are 43).
MIN_TOKEN = 32


def ensure_token(path: str | Path) -> str:
    """The API bearer token in ``path``, made (0600) if the file is missing or empty. A token
    someone wrote there that is too short to be safe is refused (ConfigError naming
    web.token_file), not replaced: clients that use it would stop working without a word."""
    path = Path(path)
    token = _read_secret(path, "web.token_file") or ""
    if not token:
        token = secrets.token_urlsafe(32)
        _write_secret(path, token + "\n", "web.token_file")
    elif len(token) < MIN_TOKEN:
        raise ConfigError(
            f"web.token_file: {path}: the token is {len(token)} characters, at least "
            f"{MIN_TOKEN} are needed (edge web-token --new writes one)"
        )
    return token


def new_token(path: str | Path) -> str:
    """A fresh API bearer token written over ``path`` (0600, atomically): the old one stops
    working once the server restarts."""
    token = secrets.token_urlsafe(32)
    _write_secret(Path(path), token + "\n", "web.token_file")
    return token


def tokens_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _read_secret(path: Path, key: str) -> str | None:
    """The file's text, stripped; None if there is no file. ConfigError naming ``key`` if it
    cannot be read, is not UTF-8, or is not a regular file (a named pipe would block)."""
    try:
        return read_regular(path, MAX_SECRET_BYTES).decode("utf-8").strip()
    except FileMissingError:
        return None
    except FileError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text") from None


def _write_secret(path: Path, text: str, key: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, text.encode(), mode=SECRET_MODE)
    except FileExistsError as exc:  # from mkdir: a file stands where a folder should be
        raise ConfigError(f"{key}: cannot write {path}: {exc.filename} is not a folder") from None
    except OSError as exc:
        raise ConfigError(f"{key}: cannot write {path}: {exc.strerror or exc}") from None


class LoginLimiter:
    """Failed sign-ins allowed per client address and in total, in a sliding window.

    ``per_client`` failures from one address within ``window_s`` lock that address out until
    the oldest ages out; ``total`` failures from all addresses lock everyone out (a guesser
    with many addresses on the LAN). A success clears its address's failures. Checks return
    the seconds to wait (0: go ahead), for a ``Retry-After`` header."""

    def __init__(self, per_client: int = 5, total: int = 30, window_s: float = 900.0) -> None:
        self.per_client = per_client
        self.total = total
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def wait_s(self, client: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._expire(now)
            waits = [0.0]
            mine = self._failures.get(client)
            if mine and len(mine) >= self.per_client:
                waits.append(mine[-self.per_client] + self.window_s - now)
            if len(self._all) >= self.total:
                waits.append(self._all[-self.total] + self.window_s - now)
            return max(waits)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._failures.setdefault(client, deque()).append(now)
            self._all.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _expire(self, now: float) -> None:
        cutoff = now - self.window_s
        while self._all and self._all[0] < cutoff:
            self._all.popleft()
        for client in list(self._failures):
            times = self._failures[client]
            while times and times[0] < cutoff:
                times.popleft()
            if not times:
                del self._failures[client]


def password_signature(path: str | Path) -> tuple[int, int] | None:
    """(mtime, size) of the password file: a change signs every session out."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
