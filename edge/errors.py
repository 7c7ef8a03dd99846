"""Typed errors. Every message is one line that names the file, key or thing at fault."""

from __future__ import annotations

import sys
from collections.abc import Callable


class DoorfaceError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits ``exit_code``, no traceback."""

    exit_code = 2


class ImageError(DoorfaceError):
    """An image file is missing, unreadable, truncated or of an unsupported kind."""


class NoFaceError(DoorfaceError):
    """An image holds no usable face."""


class DetectorError(DoorfaceError):
    """A detector backend cannot be created (missing model file, bad setting)."""


class ModelError(DoorfaceError):
    """A model file or its manifest is missing, corrupt, or not what the contract says."""


class GalleryError(DoorfaceError):
    """A gallery file is corrupt, or was made by another model."""


class SourceError(DoorfaceError):
    """A frame source cannot be opened, failed, or ended."""


class ConfigError(DoorfaceError):
    """A configuration value is missing or wrong; the message names the key."""


def run_command(command: Callable[[], int | None]) -> int:
    """Run one CLI command the way every doorface CLI does: a DoorfaceError becomes one line
    ``error: <message>`` on stderr and its ``exit_code`` (2 by default); Ctrl-C exits 130."""
    try:
        return int(command() or 0)
    except DoorfaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
