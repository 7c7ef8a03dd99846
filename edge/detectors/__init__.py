"""Detector plug-ins: an abstract base and one small module per backend.

``create_detector("yunet", {"model_path": ...})`` or ``create_detector("auto")``: YuNet when a
model file is configured or ``$DOORFACE_YUNET_MODEL`` points at one, otherwise Haar (which
needs nothing beyond OpenCV).
"""

from __future__ import annotations

from typing import Any

from edge.detectors.base import Detector, DetectorConfig, Face
from edge.errors import ConfigError


def _registry() -> dict[str, type[Detector]]:
    from edge.detectors.haar import HaarDetector
    from edge.detectors.yunet import YuNetDetector

    return {cls.name: cls for cls in (YuNetDetector, HaarDetector)}


def detector_names() -> list[str]:
    return ["auto", *_registry()]


def create_detector(name: str = "auto", options: dict[str, Any] | None = None) -> Detector:
    """Instantiate a backend by name with its own settings (a dict, e.g. a TOML table)."""
    options = dict(options or {})
    registry = _registry()
    if name == "auto":
        from edge.detectors.yunet import find_model

        name = "yunet" if find_model(options.get("model_path", "")) else "haar"
        if name == "haar":
            options.pop("model_path", None)
    if name not in registry:
        raise ConfigError(
            f"detector.backend: unknown detector {name!r} (known: {', '.join(detector_names())})"
        )
    return registry[name].from_options(options)


__all__ = ["Detector", "DetectorConfig", "Face", "create_detector", "detector_names"]
