"""The trainer's own typed errors (subclasses of the edge's DoorfaceError)."""

from __future__ import annotations

from edge.errors import DoorfaceError


class DataError(DoorfaceError):
    """A data root, pairs file or cache is missing, empty or malformed; the message names it."""


class TrainingError(DoorfaceError):
    """Training cannot start or go on (no usable identities, bad settings, bad checkpoint)."""
