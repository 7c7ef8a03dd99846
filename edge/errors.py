"""Typed errors. Every message is one line that names the file, key or thing at fault."""

from __future__ import annotations


class DoorfaceError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits non-zero, no traceback."""


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
