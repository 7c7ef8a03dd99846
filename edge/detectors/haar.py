"""Haar cascades from ``opencv-python-headless`` (4.x ships them): works on a fresh install.

Haar finds boxes, not landmarks. The documented substitute: the two eyes are located with
OpenCV's eye cascade inside the upper half of the box; the nose and mouth corners (and the
eyes, when the eye cascade fails) are placed where they sit on average relative to the
box, as measured against YuNet's landmarks on 395 LFW faces (:data:`BOX_LANDMARKS`). Optionally
(``refine_eyes``) the eyes are searched with OpenCV's eye cascade and the rest carried along;
on upright LFW faces that measured worse (mean landmark error 0.148 vs 0.135 of the eye
distance, YuNet as reference), so it is off by default; it may help with tilted heads. The alignment is therefore coarser than YuNet's: prefer YuNet
where its ONNX file can be installed. The score is ``n / (n + min_neighbors)``, where n is
the number of neighbouring raw detections that support the box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.align import template
from edge.detectors.base import Detector, DetectorConfig, Face
from edge.errors import ConfigError, DetectorError

#: Mean landmark positions relative to the Haar frontal-face box (x/w, y/h), against YuNet.
BOX_LANDMARKS = np.array(
    [[0.3137, 0.3887], [0.6923, 0.3866], [0.5017, 0.6027], [0.3492, 0.7733], [0.6715, 0.7705]],
    np.float32,
)


@dataclass
class HaarConfig(DetectorConfig):
    cascade: str = "haarcascade_frontalface_default.xml"
    #: Measured on 640x480 door frames (benchmarks/frames.py) and 300 LFW photos: 1.1 / 5
    #: neighbours / 24 px took 28 ms per frame at recall 0.990; 1.2 / 3 / 40 px takes 12 ms
    #: at recall 0.983. A door camera's faces are rarely under 40 px.
    scale_factor: float = 1.2
    min_neighbors: int = 3
    min_face: int = 40
    refine_eyes: bool = False
    #: n / (n + min_neighbors) >= 0.6: at least 5 supporting raw detections.
    score_threshold: float = 0.6

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        if self.scale_factor <= 1.0:
            raise ConfigError(f"{prefix}.scale_factor: must be > 1, got {self.scale_factor}")
        if self.min_neighbors < 1:
            raise ConfigError(f"{prefix}.min_neighbors: must be >= 1, got {self.min_neighbors}")


def _cascade(name: str) -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier"):
        raise DetectorError("detector.haar: this OpenCV has no CascadeClassifier (need opencv<5)")
    path = name if "/" in name else cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DetectorError(f"detector.haar.cascade: cannot load {path}")
    return cascade


class HaarDetector(Detector):
    name = "haar"
    config_class = HaarConfig
    config: HaarConfig

    def __init__(self, config: HaarConfig | None = None) -> None:
        super().__init__(config)
        self._faces = _cascade(self.config.cascade)
        self._eyes = _cascade("haarcascade_eye.xml") if self.config.refine_eyes else None

    def _detect(self, image_bgr: np.ndarray) -> list[Face]:
        grey = cv2.equalizeHist(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY))
        min_side = max(12, int(self.config.min_face * grey.shape[1] / max(1, image_bgr.shape[1])))
        boxes, neighbours = self._faces.detectMultiScale2(
            grey, self.config.scale_factor, self.config.min_neighbors, minSize=(min_side, min_side)
        )
        faces = []
        for (x, y, w, h), n in zip(
            np.asarray(boxes).reshape(-1, 4), np.ravel(neighbours), strict=True
        ):
            landmarks = self._landmarks(grey, int(x), int(y), int(w), int(h))
            score = float(n) / (float(n) + self.config.min_neighbors)
            faces.append(Face((float(x), float(y), float(w), float(h)), score, landmarks))
        return faces

    def _landmarks(self, grey: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
        from_box = BOX_LANDMARKS * np.array([w, h], np.float32) + np.array([x, y], np.float32)
        if self._eyes is None:
            return from_box
        eyes = self._find_eyes(grey[y : y + h // 2 + h // 10, x : x + w], w)
        if eyes is None:
            return from_box
        # Two eyes fix a similarity transform; carry the template's nose and mouth with it.
        ref = template(112)
        left, right = eyes[0] + (x, y), eyes[1] + (x, y)
        src_vec, dst_vec = ref[1] - ref[0], right - left
        scale = np.linalg.norm(dst_vec) / np.linalg.norm(src_vec)
        angle = np.arctan2(dst_vec[1], dst_vec[0]) - np.arctan2(src_vec[1], src_vec[0])
        rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return ((ref - ref[0]) @ rot.T + left).astype(np.float32)

    def _find_eyes(self, roi: np.ndarray, face_w: int) -> np.ndarray | None:
        assert self._eyes is not None
        side = max(8, face_w // 8)
        found = self._eyes.detectMultiScale(roi, 1.1, 4, minSize=(side, side))
        if len(found) < 2:
            return None
        centres = np.array([(ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in found], np.float32)
        half = face_w / 2
        lefts, rights = centres[centres[:, 0] < half], centres[centres[:, 0] >= half]
        if not len(lefts) or not len(rights):
            return None
        # The eye cascade also fires on brows and nostrils: keep the candidates nearest to
        # where eyes usually are.
        expect_l = BOX_LANDMARKS[0] * face_w
        expect_r = BOX_LANDMARKS[1] * face_w
        left = lefts[np.argmin(np.linalg.norm(lefts - expect_l, axis=1))]
        right = rights[np.argmin(np.linalg.norm(rights - expect_r, axis=1))]
        distance = right[0] - left[0]
        if not 0.25 * face_w <= distance <= 0.6 * face_w or abs(right[1] - left[1]) > 0.15 * face_w:
            return None
        return np.stack([left, right])
