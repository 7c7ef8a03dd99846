"""The one face alignment: 5 landmarks -> similarity transform -> fixed-size RGB crop.

The trainer, the converter and the edge all call :func:`align_face`. Changing anything here
changes what the encoder sees, so bump :data:`PREPROCESS_VERSION` with it: the trainer's face
cache is keyed by it and model manifests record it.

A model names its preprocessing in its manifest (``input.preprocessing``): which landmark
template its crops are aligned to. Doorface's own encoders use :data:`PREPROCESS_VERSION`
(ArcFace's template); the imported dlib ResNet (``converter import-dlib``) takes dlib's face
chips, whose framing :data:`TEMPLATE_DLIB_150` reproduces from YuNet's landmarks. Everything
else (similarity transform, interpolation, colour order) is the same for both.
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


#: Where YuNet puts the 5 landmarks on dlib's own 150x150 face chips (``get_face_chip``,
#: padding 0.25: what dlib's face recognition ResNet was trained on): the median over 399
#: LFW photos outside pairsDevTest, each chipped by dlib (HOG box, dlib's 5-point shape
#: predictor) and detected by YuNet at full size (spread 3-4 px per point). Aligning YuNet's
#: landmarks to it gives dlib's framing without dlib's detector or shape predictor.
TEMPLATE_DLIB_150 = np.array(
    [
        [43.76, 47.05],
        [101.67, 46.01],
        [72.63, 77.81],
        [48.79, 102.59],
        [98.57, 101.92],
    ],
    dtype=np.float64,
)
#: The dlib ResNet's preprocessing: its crops are aligned to :data:`TEMPLATE_DLIB_150`.
DLIB_CHIP = "dlib-chip-1"
#: Every preprocessing an edge model may name: (template, the crop side it is given for).
TEMPLATES = {PREPROCESS_VERSION: (TEMPLATE_112, 112.0), DLIB_CHIP: (TEMPLATE_DLIB_150, 150.0)}

#: The framing a gallery keeps its faces in (``edge.gallery.stored_crop``), which no model
#: takes: dlib's chip at its own scale, moved into a 192 px square with room around it for
#: doorface's framing (which reaches 33 px above the chip and 11 px past its sides, while the
#: chip reaches 14 px below doorface's chin). Either model's crop is then cut from real pixels
#: at its own scale or finer, never enlarged or padded with black.
GALLERY_FRAMING = "doorface-gallery-2"
TEMPLATE_GALLERY_192 = TEMPLATE_DLIB_150 + np.array([23.0, 38.0])  # whole pixels: a chip is a copy
#: Every framing a crop may be aligned to: the models' and the gallery's.
FRAMINGS = {**TEMPLATES, GALLERY_FRAMING: (TEMPLATE_GALLERY_192, 192.0)}


def preprocessing_in(record: object, where: str, default: str = PREPROCESS_VERSION) -> str:
    """The ``preprocessing`` a run's ``training.json`` record names (an imported model's:
    ``converter import-dlib``), ``default`` when it names none; ModelError naming ``where``
    for one this edge does not know."""
    from edge.errors import ModelError

    value = record.get("preprocessing", default) if isinstance(record, dict) else None
    if value not in TEMPLATES:
        raise ModelError(
            f"{where}: preprocessing: {value!r} is none of {', '.join(map(repr, TEMPLATES))}"
        )
    return value


def template(size: int, preprocessing: str = PREPROCESS_VERSION) -> np.ndarray:
    """Landmark positions (5x2, float64) in a ``size`` x ``size`` crop aligned for
    ``preprocessing`` (a key of :data:`FRAMINGS`)."""
    points, side = FRAMINGS[preprocessing]
    return points * (size / side)


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


def align_face(
    image_bgr: np.ndarray,
    landmarks: np.ndarray,
    size: int,
    preprocessing: str = PREPROCESS_VERSION,
) -> np.ndarray:
    """Warp the face with these 5 landmarks onto the template of ``preprocessing``: returns
    RGB uint8 (size, size, 3).

    ``image_bgr`` is the frame in OpenCV's BGR order; the crop comes back in RGB, the order
    every doorface model takes. Pixels outside the frame are black. Bilinear interpolation:
    cheap, and the same on every machine.
    """
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    matrix = similarity_transform(points, template(size, preprocessing))
    crop = cv2.warpAffine(
        image_bgr,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def realign_crops(
    crops_rgb: np.ndarray,
    size: int,
    preprocessing: str,
    source: str = PREPROCESS_VERSION,
) -> np.ndarray:
    """Crops aligned for ``source`` (any side) re-cut for ``preprocessing`` at ``size``: how a
    gallery's stored crops are re-embedded for a model with another template, and
    how a model's crop of a visit becomes a stored crop. Parts of the new framing outside the
    old crop come out black (dlib's chip reaches about 10% below a doorface crop's chin, a
    doorface crop a little above a dlib chip's brows; :data:`GALLERY_FRAMING` holds both)."""
    crops_rgb = np.asarray(crops_rgb, np.uint8)
    if not len(crops_rgb):
        return np.zeros((0, size, size, 3), np.uint8)
    side = crops_rgb.shape[1]
    out = np.empty((len(crops_rgb), size, size, 3), np.uint8)
    for i, crop in enumerate(crops_rgb):
        out[i] = align_face(crop[..., ::-1], template(side, source), size, preprocessing)
    return out
