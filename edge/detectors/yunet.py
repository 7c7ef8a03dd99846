"""YuNet: boxes and 5 real landmarks; ~3 ms for a 640x480 frame detected at 320 pixels wide
on one x86 core, run on LiteRT (:mod:`edge.detectors.yunet_litert`; OpenCV's DNN module took
twice that for the same faces).

The model ships inside the package (:data:`SHIPPED_MODEL`: opencv_zoo's ONNX, MIT licence,
converted by ``converter import-yunet``; authors and licence text in ``edge/models/yunet/``),
so nothing has to be downloaded or configured; ``detector.model`` points at another YuNet
converted the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.detectors.base import Detector, Face
from edge.detectors.settings import DetectorSettings
from edge.detectors.yunet_litert import YuNetNet, source_of
from edge.errors import DetectorError
from edge.files import FileError, check_regular
from edge.manifest import DetectorRecord

#: The refining pass's square is this many times the face's side: the whole head and some
#: background, as YuNet saw faces in training.
REFINE_CONTEXT = 2.0
SHIPPED_MODEL = (
    Path(__file__).resolve().parents[1] / "models" / "yunet" / "face_detection_yunet_2026may.tflite"
)


def model_file(configured: str) -> Path:
    """The TFLite file to load: ``detector.model`` when set, else the shipped one."""
    path = Path(configured).expanduser() if configured else SHIPPED_MODEL
    try:
        check_regular(path)  # a folder, or a named pipe that would block the loader
    except FileError as exc:
        where = "detector.model" if configured else "the shipped YuNet model (reinstall doorface)"
        raise DetectorError(f"{where}: {exc}") from None
    return path


class YuNetRows(Protocol):
    """A YuNet network: a BGR image -> (N, 15) rows of box, 5 landmarks and score, in the
    image's pixels (:class:`edge.detectors.yunet_litert.YuNetNet`; OpenCV's
    ``FaceDetectorYN`` gives the same rows)."""

    def detect(self, image_bgr: np.ndarray) -> np.ndarray: ...


class YuNetDetector(Detector):
    """YuNet's faces, with a refining pass for the landmarks of faces found on a shrunk copy.
    ``net`` makes the network (the shipped or configured file on LiteRT when None; a
    benchmark passes OpenCV's to compare the two runtimes on the same detector)."""

    name = "yunet"

    def __init__(
        self,
        settings: DetectorSettings | None = None,
        net: Callable[[], YuNetRows] | None = None,
    ) -> None:
        super().__init__(settings)
        s = self.settings
        path = model_file(s.model)
        make = net or functools.partial(_create, path, s)
        self._net = make()
        # A second network for the refining pass: its input size never changes (resizing one
        # interpreter every call costs more than the detection itself).
        self._refine_net = make() if s.refine_px else None
        self.model_path = path

    @functools.cached_property
    def record(self) -> DetectorRecord:
        """The ONNX the file was converted from (its sidecar names it), so that models trained
        on faces OpenCV found with that ONNX match; the file itself without a sidecar."""
        source = source_of(self.model_path)
        return DetectorRecord(self.name, *source) if source else super().record

    def _detect(self, image_bgr: np.ndarray, min_side: float) -> list[Face]:
        return _faces(self._net.detect(image_bgr))

    def _refined(self, image_bgr: np.ndarray, faces: list[Face], scale: float) -> list[Face]:
        if self._refine_net is None:
            return faces
        return [self._refine(image_bgr, f, scale) for f in faces]

    def _refine(self, image_bgr: np.ndarray, face: Face, scale: float) -> Face:
        """``face`` with the landmarks YuNet finds in a full-resolution square around it
        (``REFINE_CONTEXT`` times its side), or as it was when that square would be no finer
        than the copy it was found on, or when the face is not found again there."""
        side_px = self.settings.refine_px
        x, y, w, h = face.box
        side = max(1, round(REFINE_CONTEXT * max(w, h)))
        zoom = side_px / side
        if zoom <= scale:
            return face
        x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
        square = _square(image_bgr, x0, y0, side, side_px)
        found = _faces(self._refine_net.detect(square))
        if not found:
            return face
        centre = np.array([side_px / 2, side_px / 2])
        best = min(found, key=lambda f: np.hypot(*(_centre(f) - centre)))
        if np.hypot(*(_centre(best) - centre)) > side_px / (2 * REFINE_CONTEXT):
            return face  # another face in the square, not this one
        # Only the landmarks: YuNet draws a bigger box around a face it sees at 80 px than
        # around the same face at 30 px (~15% on door faces), and sizes must keep one meaning
        # for detector.min_face, tracking.min_face_px and the tracker's overlaps.
        landmarks = best.landmarks / zoom + np.float32([x0, y0])
        return Face(face.box, face.score, landmarks.astype(np.float32))


def _create(path: Path, s: DetectorSettings) -> YuNetNet:
    return YuNetNet(
        path,
        # Keep low-score candidates here; the base class applies score_threshold.
        score_threshold=min(s.score_threshold, 0.5),
        nms_threshold=s.nms_threshold,
        top_k=s.top_k,
        # as many threads as OpenCV's own work (cv2.setNumThreads; all cores by default), as
        # when OpenCV's DNN module ran YuNet
        threads=max(1, cv2.getNumThreads()),
    )


def _square(image: np.ndarray, x0: int, y0: int, side: int, out: int) -> np.ndarray:
    """The ``side``-pixel square of ``image`` at (x0, y0), black outside the frame, resized to
    ``out`` pixels (area-averaged when it shrinks, so a big face is not aliased)."""
    inside = image[max(0, y0) : max(0, y0 + side), max(0, x0) : max(0, x0 + side)]
    padded = cv2.copyMakeBorder(
        inside,
        max(0, -y0),
        side - inside.shape[0] - max(0, -y0),
        max(0, -x0),
        side - inside.shape[1] - max(0, -x0),
        cv2.BORDER_CONSTANT,
    )
    shrink = out < side
    return cv2.resize(
        padded, (out, out), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def _faces(rows: np.ndarray) -> list[Face]:
    return [
        Face(
            box=(float(r[0]), float(r[1]), float(r[2]), float(r[3])),
            score=float(r[14]),
            landmarks=np.asarray(r[4:14], np.float32).reshape(5, 2),
        )
        for r in rows
    ]


def _centre(face: Face) -> np.ndarray:
    x, y, w, h = face.box
    return np.array([x + w / 2, y + h / 2])
