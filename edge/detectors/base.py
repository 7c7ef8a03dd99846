"""The detector interface: one frame in, faces with boxes, scores and 5 landmarks out."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from edge.detectors.settings import DetectorSettings
from edge.manifest import DetectorRecord, sha256_file


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


class Detector(ABC):
    """Base class of detector plug-ins. Subclasses load their model in ``__init__`` and set
    :attr:`model_path` to the file they loaded (what :meth:`record` identifies them by)."""

    name: ClassVar[str]
    model_path: Path | None = None

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR uint8 frame, largest first, in full-frame coordinates."""
        small = _downscale(image_bgr, self.settings.detect_width)
        min_side = self.settings.min_face * small.shape[1] / image_bgr.shape[1]
        faces = self._detect(small, min_side)
        if small is not image_bgr:
            sx = image_bgr.shape[1] / small.shape[1]
            sy = image_bgr.shape[0] / small.shape[0]
            faces = [f.scaled(sx, sy) for f in faces]
        faces = [
            f
            for f in faces
            if f.size >= self.settings.min_face and f.score >= self.settings.score_threshold
        ]
        if small is not image_bgr:
            faces = self._refined(image_bgr, faces, small.shape[1] / image_bgr.shape[1])
        return sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True)

    def _refined(self, image_bgr: np.ndarray, faces: list[Face], scale: float) -> list[Face]:
        """Faces found on a copy downscaled by ``scale``, given finer landmarks from the full
        frame where a backend can (YuNet); as they are by default."""
        return faces

    @abstractmethod
    def _detect(self, image_bgr: np.ndarray, min_side: float) -> list[Face]:
        """Faces in this (possibly downscaled) image, in its own coordinates. ``min_side`` is
        ``min_face`` in this image's pixels: a backend that searches by size may start there
        (smaller faces are dropped afterwards anyway)."""

    @functools.cached_property
    def record(self) -> DetectorRecord:
        """Backend, model file name and its sha256: what a model manifest records."""
        if self.model_path is None:
            return DetectorRecord(self.name, "", "")
        return DetectorRecord(self.name, self.model_path.name, sha256_file(self.model_path))


def _downscale(image: np.ndarray, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if width <= 0 or w <= width:
        return image
    size = (width, max(1, round(h * width / w)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
