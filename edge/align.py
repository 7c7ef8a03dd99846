"""The one face alignment: 5 landmarks -> similarity transform -> fixed-size RGB crop.

The trainer, the converter and the edge all call :func:`align_face`. Changing anything here
changes what the encoder sees, so bump :data:`PREPROCESS_VERSION` with it: the trainer's face
cache is keyed by it and model manifests record it.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Recorded in caches and model manifests; the edge refuses a model made for another version.
PREPROCESS_VERSION = "doorface-align-1"

#: ArcFace's 5-point template for a 112x112 crop, in image order: eye on the image's left
#: (the subject's right eye), eye on the image's right, nose tip, mouth corner on the image's
#: left, mouth corner on the image's right. Other crop sizes scale it uniformly.
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def template(size: int) -> np.ndarray:
    """Landmark positions (5x2, float64) in a ``size`` x ``size`` aligned crop."""
    return TEMPLATE_112 * (size / 112.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, shift) taking src to dst.

    Umeyama's closed form, so the result is deterministic (no RANSAC). Returns a 2x3 matrix.
    Reflections are excluded: a mirrored face is not the same face.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    var = (src_c**2).sum() / len(src)
    if var < 1e-12:
        raise ValueError("landmarks are degenerate (all in one place)")
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / var
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(image_bgr: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Warp the face with these 5 landmarks onto the template: returns RGB uint8 (size, size, 3).

    ``image_bgr`` is the frame in OpenCV's BGR order; the crop comes back in RGB, the order
    every doorface model takes. Pixels outside the frame are black. Bilinear interpolation:
    cheap, and the same on every machine.
    """
    matrix = similarity_transform(np.asarray(landmarks, np.float64).reshape(5, 2), template(size))
    crop = cv2.warpAffine(
        image_bgr,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
