"""The converter's typed errors: subclasses of the edge's DoorfaceError, one line each."""

from __future__ import annotations

from edge.errors import DoorfaceError


class ConverterError(DoorfaceError):
    """Conversion cannot go on: bad model, bad calibration data, bad output path, bad result."""


class CheckFailed(ConverterError):
    """``converter check`` / ``compare`` found the model outside its contract or tolerance."""

    exit_code = 1
