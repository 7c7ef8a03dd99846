"""The one error a web request is refused with: an HTTP status and a one-line reason."""

from __future__ import annotations

from edge.errors import DoorfaceError, GalleryError, ImageError


class Problem(DoorfaceError):
    """A refused request: ``status`` (4xx) and a message for the person or client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def as_problem(exc: DoorfaceError) -> Problem:
    """The Problem for an error raised below the web layer: images too large 413, unreadable
    images 415, a gallery that cannot be changed 409, anything else 400."""
    from edge.image import ImageTooLargeError

    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ImageTooLargeError):
        return Problem(413, str(exc))
    if isinstance(exc, ImageError):
        return Problem(415, str(exc))
    if isinstance(exc, GalleryError):
        return Problem(409, str(exc))
    return Problem(400, str(exc))
