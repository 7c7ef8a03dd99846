"""Reading a file a person named (a photo, a config, a secret, a pairs list, a model): one rule
for every entry point of edge, trainer and converter.

A path from a config file or a command line may name a folder, a named pipe (a read would wait
forever for a writer), a device (``/dev/zero`` never ends) or something far larger than the
file it should be. :func:`read_regular` opens without blocking, checks what the path is before
reading a byte and reads at most ``max_bytes``; :func:`check_regular` is the same check for a
file another library will open (TensorFlow, LiteRT, OpenCV's cascade loader). Both raise a
:class:`FileError` whose message is one line starting with the path; callers wrap it in their
own error type, prefixed with the config key or option where that names it better.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileError(Exception):
    """A file that cannot be read as asked; ``str()`` is one line naming the path."""


class FileMissingError(FileError):
    """Nothing at the path (callers with a default, or their own message, catch this one)."""


class FileTooLargeError(FileError):
    """A regular file over the caller's ``max_bytes``."""


def read_regular(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them.

    Raises :class:`FileMissingError`, :class:`FileTooLargeError` or :class:`FileError` (a
    folder, pipe, socket or device; unreadable). A file that grows while it is read past
    ``max_bytes`` is refused too, since only ``max_bytes + 1`` bytes are ever read."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            info = os.fstat(fd)
            _refuse_irregular(path, info.st_mode)
            data = b""
            if info.st_size <= max_bytes:
                with open(fd, "rb", closefd=False) as f:
                    data = f.read(max_bytes + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise FileMissingError(f"{path}: no such file") from None
    except OSError as exc:
        raise FileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    size = max(info.st_size, len(data))
    if size > max_bytes:
        raise FileTooLargeError(
            f"{path}: {_size_text(size)} is over the {_size_text(max_bytes)} file size limit"
        )
    return data


def check_regular(path: str | os.PathLike, *, missing_ok: bool = False) -> None:
    """Refuse anything but a regular file at ``path`` (following links), before a library that
    would block on a pipe opens it. :class:`FileMissingError` if nothing is there, unless
    ``missing_ok`` (a file about to be written, or one the caller names as missing itself)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if missing_ok:
            return
        raise FileMissingError(f"{path}: no such file") from None
    except OSError as exc:
        raise FileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    _refuse_irregular(path, mode)


def _refuse_irregular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise FileError(f"{path}: not a regular file ({_kind(mode)})")


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ]
    return next((name for test, name in kinds if test(mode)), "of another kind")


def _size_text(n: int) -> str:
    """Bytes as a person reads them: 1.0 MB, 64 kB, 512 bytes (decimal units)."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB" if n % 1_000_000 else f"{n // 1_000_000} MB"
    if n >= 1000:
        return f"{n / 1e3:.1f} kB" if n % 1000 else f"{n // 1000} kB"
    return f"{n} bytes"


__all__ = ["FileError", "FileMissingError", "FileTooLargeError", "check_regular", "read_regular"]
