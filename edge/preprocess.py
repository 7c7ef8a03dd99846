"""The one face preprocessing: detect, pick, align. The trainer and the converter import this.

Every crop that reaches an encoder, in training, calibration or on the Pi, comes out of
:func:`aligned_faces` or :func:`face_crop_from_file`, so there is no train/serve skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.align import PREPROCESS_VERSION, align_face
from edge.detectors import Detector, Face
from edge.errors import NoFaceError
from edge.image import load_image

__all__ = [
    "PREPROCESS_VERSION",
    "AlignedFace",
    "aligned_faces",
    "detect_faces",
    "face_crop",
    "face_crop_from_file",
]


@dataclass(frozen=True)
class AlignedFace:
    face: Face
    crop: np.ndarray  # RGB uint8, (size, size, 3)


def detect_faces(
    image_bgr: np.ndarray, detector: Detector, detect_image: np.ndarray | None = None
) -> list[Face]:
    """Faces in full-frame coordinates, largest first; detection may run on ``detect_image``
    (a lower-resolution copy of the same frame), whose boxes and landmarks are rescaled."""
    faces = detector.detect(image_bgr if detect_image is None else detect_image)
    if detect_image is not None and detect_image.shape[:2] != image_bgr.shape[:2]:
        sx = image_bgr.shape[1] / detect_image.shape[1]
        sy = image_bgr.shape[0] / detect_image.shape[0]
        faces = [f.scaled(sx, sy) for f in faces]
    return faces


def aligned_faces(
    image_bgr: np.ndarray,
    detector: Detector,
    size: int,
    *,
    max_faces: int | None = None,
    detect_image: np.ndarray | None = None,
    preprocessing: str = PREPROCESS_VERSION,
) -> list[AlignedFace]:
    """Every face in the frame, largest first, aligned to ``size`` x ``size`` RGB crops for
    ``preprocessing`` (the model's: ``Embedder.preprocessing``).

    ``detect_image`` lets a camera detect on its low-resolution stream while the crop is cut
    from the full-resolution frame (landmarks are rescaled between the two).
    """
    faces = detect_faces(image_bgr, detector, detect_image)
    if max_faces is not None:
        faces = faces[:max_faces]
    return [AlignedFace(f, align_face(image_bgr, f.landmarks, size, preprocessing)) for f in faces]


def face_crop(
    image_bgr: np.ndarray, detector: Detector, size: int, preprocessing: str = PREPROCESS_VERSION
) -> AlignedFace:
    """The largest face of an image (a portrait, a training photo). Raises NoFaceError."""
    faces = aligned_faces(image_bgr, detector, size, max_faces=1, preprocessing=preprocessing)
    if not faces:
        raise NoFaceError("no face found")
    return faces[0]


def face_crop_from_file(
    path: str | Path, detector: Detector, size: int, preprocessing: str = PREPROCESS_VERSION
) -> AlignedFace:
    """Load an image file and return its largest aligned face.

    Raises ImageError (unreadable) or NoFaceError, each naming the file.
    """
    image = load_image(path)
    try:
        return face_crop(image, detector, size, preprocessing)
    except NoFaceError:
        raise NoFaceError(f"{path}: no face found") from None
