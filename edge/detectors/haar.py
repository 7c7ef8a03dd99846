"""Haar cascades from ``opencv-python-headless`` (4.x ships them): the explicit fallback
(``detector.backend = "haar"``); YuNet is the default.

Haar finds boxes, not landmarks. The nose and mouth corners and the eyes are placed where they
sit on average relative to the box, as measured against YuNet's landmarks on 395 LFW faces
(:data:`BOX_LANDMARKS`). Optionally (``detector.refine_eyes``) the eyes are searched with
OpenCV's eye cascade inside the upper half of the box and the rest carried along; on upright
LFW faces that measured worse (mean landmark error 0.148 vs 0.135 of the eye distance, YuNet
as reference), so it is off by default; it may help with tilted heads. Either way the
alignment is coarser than YuNet's, and a model trained on YuNet crops loses accuracy on Haar
crops. The score is ``n / (n + min_neighbors)``, where n is the number of neighbouring raw
detections that support the box. ``detector.model`` may name another cascade XML.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.align import template
from edge.detectors.base import Detector, Face
from edge.detectors.settings import DetectorSettings
from edge.errors import DetectorError
from edge.files import FileError, check_regular

#: Mean landmark positions relative to the Haar frontal-face box (x/w, y/h), against YuNet.
BOX_LANDMARKS = np.array(
    [[0.3137, 0.3887], [0.6923, 0.3866], [0.5017, 0.6027], [0.3492, 0.7733], [0.6715, 0.7705]],
    np.float32,
)


#: The face cascade used when ``detector.model`` is empty (ships with opencv-python-headless).
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"


def cascade_file(configured: str) -> Path:
    """``detector.model`` when set, else OpenCV's own frontal-face cascade."""
    if not hasattr(cv2, "CascadeClassifier"):
        raise DetectorError("detector.backend: haar needs OpenCV's CascadeClassifier (opencv<5)")
    path = (
        Path(configured).expanduser()
        if configured
        else Path(cv2.data.haarcascades, DEFAULT_CASCADE)
    )
    try:
        check_regular(path)  # a folder, or a named pipe that would block the loader
    except FileError as exc:
        raise DetectorError(f"detector.model: {exc}") from None
    return path


def _load(path: Path) -> cv2.CascadeClassifier:
    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError):  # not XML at all (an .onnx, a .jpg): OpenCV's parser threw
        raise DetectorError(f"detector.model: {path}: not a Haar cascade") from None
    if cascade.empty():
        raise DetectorError(f"detector.model: {path}: not a Haar cascade")
    return cascade


class HaarDetector(Detector):
    name = "haar"

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)
        self.model_path = cascade_file(self.settings.model)
        self._faces = _load(self.model_path)
        eyes = Path(cv2.data.haarcascades, "haarcascade_eye.xml")
        self._eyes = _load(eyes) if self.settings.refine_eyes else None

    def _detect(self, image_bgr: np.ndarray, min_side: float) -> list[Face]:
        grey = cv2.equalizeHist(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY))
        search = max(12, int(min_side))
        boxes, neighbours = self._faces.detectMultiScale2(
            grey,
            self.settings.scale_factor,
            self.settings.min_neighbors,
            minSize=(search, search),
        )
        faces = []
        for (x, y, w, h), n in zip(
            np.asarray(boxes).reshape(-1, 4), np.ravel(neighbours), strict=True
        ):
            landmarks = self._landmarks(grey, int(x), int(y), int(w), int(h))
            score = float(n) / (float(n) + self.settings.min_neighbors)
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
