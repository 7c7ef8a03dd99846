"""The detector interface: one frame in, faces with boxes, scores and 5 landmarks out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from edge.errors import ConfigError


@dataclass(frozen=True)
class Face:
    """A detected face in frame coordinates.

    box: (x, y, w, h) in pixels. landmarks: 5x2 float32 in the order of
    :data:`edge.align.TEMPLATE_112` (eye on the image's left first).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray = field(repr=False)

    @property
    def size(self) -> float:
        """The shorter side of the box: what "tiny face" rules compare against."""
        return min(self.box[2], self.box[3])

    def scaled(self, sx: float, sy: float) -> Face:
        """The same face in a frame resized by (sx, sy), e.g. lores -> main stream."""
        x, y, w, h = self.box
        points = self.landmarks * np.array([sx, sy], np.float32)
        return Face((x * sx, y * sy, w * sx, h * sy), self.score, points.astype(np.float32))


@dataclass
class DetectorConfig:
    """Settings every backend shares. Backends subclass this with their own fields."""

    #: Detection runs on a copy downscaled to at most this width (0: full size). Speed for
    #: recall: faces narrower than about 20 pixels in the downscaled copy are lost.
    detect_width: int = 320
    #: Faces whose box is narrower than this many frame pixels are dropped.
    min_face: int = 24
    score_threshold: float = 0.6

    def validate(self, prefix: str) -> None:
        if self.detect_width < 0:
            raise ConfigError(f"{prefix}.detect_width: must be >= 0, got {self.detect_width}")
        if self.min_face < 1:
            raise ConfigError(f"{prefix}.min_face: must be >= 1, got {self.min_face}")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ConfigError(
                f"{prefix}.score_threshold: must be in [0, 1], got {self.score_threshold}"
            )


class Detector(ABC):
    """Base class of detector plug-ins. Subclasses load their model in ``__init__``."""

    name: ClassVar[str]
    config_class: ClassVar[type[DetectorConfig]] = DetectorConfig

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or self.config_class()
        self.config.validate(f"detector.{self.name}")

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR uint8 frame, largest first, in full-frame coordinates."""
        small = _downscale(image_bgr, self.config.detect_width)
        faces = self._detect(small)
        if small is not image_bgr:
            sx = image_bgr.shape[1] / small.shape[1]
            sy = image_bgr.shape[0] / small.shape[0]
            faces = [f.scaled(sx, sy) for f in faces]
        faces = [
            f
            for f in faces
            if f.size >= self.config.min_face and f.score >= self.config.score_threshold
        ]
        return sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True)

    @abstractmethod
    def _detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in this (possibly downscaled) image, in its own coordinates."""

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Detector:
        """Build from a dict of settings (TOML table, CLI); unknown keys name themselves."""
        known = set(cls.config_class.__dataclass_fields__)
        for key in options:
            if key not in known:
                raise ConfigError(
                    f"detector.{cls.name}.{key}: unknown setting (known: {', '.join(sorted(known))})"
                )
        return cls(cls.config_class(**options))


def _downscale(image: np.ndarray, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if width <= 0 or w <= width:
        return image
    size = (width, max(1, round(h * width / w)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
