"""Detector plug-ins: an abstract base, one small module per backend, and the one factory.

``create_detector(settings)`` is the only way any entry point (``edge`` commands, the daemon,
the demo, the trainer, the converter, the benchmarks) makes a detector; ``settings`` is the
daemon's ``[detector]`` table or the ``--detector*`` options (:mod:`edge.detectors.settings`).
With no settings it is YuNet with its shipped model: no file to fetch, no environment
variable. Haar is used only when asked for (``backend = "haar"``).
"""

from __future__ import annotations

from edge.detectors.base import Detector, Face
from edge.detectors.settings import (
    BACKENDS,
    TRAINING_DETECTOR,
    DetectorSettings,
    add_detector_options,
    settings_from_args,
)


def create_detector(settings: DetectorSettings | None = None) -> Detector:
    """The detector these settings describe (validated first: errors name ``detector.<key>``)."""
    settings = (settings or DetectorSettings()).validate()
    if settings.backend == "haar":
        from edge.detectors.haar import HaarDetector

        return HaarDetector(settings)
    from edge.detectors.yunet import YuNetDetector

    return YuNetDetector(settings)


__all__ = [
    "BACKENDS",
    "TRAINING_DETECTOR",
    "Detector",
    "DetectorSettings",
    "Face",
    "add_detector_options",
    "create_detector",
    "settings_from_args",
]
