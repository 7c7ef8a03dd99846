"""Enrolment: from photos, or by capturing sharp, varied crops from a live source.

Each enrolled face yields two crops from the same landmarks: one aligned at the model's input
size, which is embedded (as the trainer aligns its faces: no train/serve skew), and the 192 px
one the gallery keeps for re-embedding with future models (:func:`edge.gallery.stored_crop`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.detectors import Detector
from edge.embedder import Embedder
from edge.errors import ImageError
from edge.gallery import stored_crop
from edge.image import list_images, load_image
from edge.pipeline import sharpness
from edge.preprocess import PREPROCESS_VERSION, AlignedFace, aligned_faces
from edge.sources import open_source

log = logging.getLogger(__name__)

#: A photo with several faces is used only if its largest face is this much bigger (area)
#: than the next one: otherwise we cannot tell which face is the person being enrolled.
DOMINANT_AREA_RATIO = 2.0


@dataclass
class EnrolResult:
    crops: list[np.ndarray] = field(default_factory=list)  # at the model's input size: embed
    stored_crops: list[np.ndarray] = field(default_factory=list)  # 192 px: the gallery keeps
    sources: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one-line reasons, each naming the file


def pick_enrolment_face(faces: list[AlignedFace], min_face: int) -> tuple[AlignedFace | None, str]:
    """The face to enrol from one photo, or (None, reason)."""
    if not faces:
        return None, "no face found"
    first = faces[0]
    if len(faces) > 1:
        area = first.face.box[2] * first.face.box[3]
        other = faces[1].face.box[2] * faces[1].face.box[3]
        if area < DOMINANT_AREA_RATIO * other:
            return None, f"{len(faces)} faces of similar size (which one is the person?)"
    if first.face.size < min_face:
        return None, f"face too small ({first.face.size:.0f} px < {min_face} px)"
    return first, ""


def add_enrolment_face(
    result: EnrolResult,
    label: str,
    image: np.ndarray,
    detector: Detector,
    size: int,
    min_face: int = 40,
    preprocessing: str = PREPROCESS_VERSION,
    source: str | None = None,
) -> bool:
    """Add the one clear face of the BGR ``image`` to ``result``: its crop at the model's
    ``size``, the crop the gallery keeps and ``source`` (default ``label``); or, when the photo
    has none (:func:`pick_enrolment_face`), a skipped line "label: reason". True if added.
    The one enrolment step of photos, for the CLI, the web app and the demo alike."""
    faces = aligned_faces(image, detector, size, preprocessing=preprocessing)
    chosen, reason = pick_enrolment_face(faces, min_face)
    if chosen is None:
        result.skipped.append(f"{label}: {reason}")
        return False
    result.crops.append(chosen.crop)
    result.stored_crops.append(stored_crop(image, chosen.face.landmarks))
    result.sources.append(source or label)
    return True


def crops_from_images(
    paths: list[str | Path],
    detector: Detector,
    size: int,
    min_face: int = 40,
    preprocessing: str = PREPROCESS_VERSION,
) -> EnrolResult:
    images, problems = list_images(paths)
    result = EnrolResult(skipped=list(problems))
    for path in images:
        try:
            image = load_image(path)
        except ImageError as exc:
            result.skipped.append(str(exc))
            continue
        add_enrolment_face(result, str(path), image, detector, size, min_face, preprocessing)
    return result


def crops_from_source(
    spec: str,
    detector: Detector,
    embedder: Embedder,
    count: int,
    min_face: int = 60,
    min_sharpness: float = 30.0,
    max_similarity: float = 0.97,
    min_interval: float = 0.3,
    timeout: float = 60.0,
) -> EnrolResult:
    """Capture ``count`` crops of the one person in front of the source.

    Sharp: Laplacian variance >= ``min_sharpness``. Varied: each new crop's score to every
    crop already taken (the model's scale: cosine-like for every shipped model, see
    :mod:`edge.scoring`) is below ``max_similarity`` and at least ``min_interval`` seconds
    (of frame time) have passed, so the person turning their head gives several views.
    Frames with no face or more than one face are skipped.
    """
    result = EnrolResult()
    taken: list[np.ndarray] = []
    last_time = -1e9
    started = time.monotonic()
    skipped = {"no face": 0, "several faces": 0, "too small": 0, "blurry": 0, "too similar": 0}
    with open_source(spec) as source:
        for frame in source:
            if len(result.crops) >= count or time.monotonic() - started > timeout:
                break
            faces = aligned_faces(
                frame.image,
                detector,
                embedder.input_size,
                detect_image=frame.detect_image,
                preprocessing=embedder.preprocessing,
            )
            if not faces:
                skipped["no face"] += 1
                continue
            if len(faces) > 1:
                skipped["several faces"] += 1
                continue
            face = faces[0]
            if face.face.size < min_face:
                skipped["too small"] += 1
                continue
            if sharpness(face.crop) < min_sharpness:
                skipped["blurry"] += 1
                continue
            embedding = embedder.embed(face.crop)[0]
            too_soon = frame.timestamp - last_time < min_interval if source.live else False
            pairwise = embedder.scoring.pairwise
            closest = float(pairwise(embedding, np.stack(taken)).max()) if taken else -np.inf
            if too_soon or closest >= max_similarity:
                skipped["too similar"] += 1
                continue
            taken.append(embedding)
            last_time = frame.timestamp
            result.crops.append(face.crop)
            result.stored_crops.append(stored_crop(frame.image, face.face.landmarks))
            result.sources.append(f"{frame.source}#{frame.index}")
            log.info("captured %d/%d", len(result.crops), count)
    result.skipped = [f"{spec}: {n} frames skipped ({why})" for why, n in skipped.items() if n]
    return result
