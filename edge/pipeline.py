"""The recognition pipeline: frame -> detect -> align -> embed -> match, with per-stage timing."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.align import align_face
from edge.detectors import Detector, DetectorSettings, Face, create_detector
from edge.embedder import Embedder
from edge.errors import ModelError
from edge.gallery import Gallery
from edge.matching import Match, Matcher
from edge.preprocess import detect_faces

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "doorface-default.tflite"


@dataclass
class FaceResult:
    face: Face
    crop: np.ndarray = field(repr=False)  # aligned RGB uint8
    embedding: np.ndarray = field(repr=False)  # unit float32 (D,)
    match: Match
    sharpness: float  # variance of the Laplacian of the grey crop: low = blurry


def sharpness(crop_rgb: np.ndarray) -> float:
    """Variance of the Laplacian: the usual cheap focus measure (higher is sharper)."""
    grey = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def resolve_model(model: str | Path | None) -> Path:
    """The model to use: the given path, or the default model shipped inside the package."""
    if model:
        return Path(model)
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    raise ModelError("no --model given and no default model is installed in edge/models")


def detector_mismatch(detector: Detector, embedder: Embedder) -> str | None:
    """Why this detector is not the one the model was trained with, or None when it is (or
    when the manifest predates recording it). Not an error: the crops still work, only
    worse, e.g. Haar's box-derived landmarks for a model trained on YuNet's."""
    trained = embedder.manifest.detector
    if trained is None or not trained.differs_from(detector.record):
        return None
    return (
        f"{embedder.path.name}: trained on faces found by {trained.describe()}, but the "
        f"detector is {detector.record.describe()}: expect lower accuracy "
        "(set [detector] / --detector to match)"
    )


class Recognizer:
    """Owns one detector, one embedder and one matcher; ``recognize_faces`` reads one frame.
    Logs one warning when the detector is not the one the model was trained with."""

    def __init__(
        self,
        detector: Detector,
        embedder: Embedder,
        matcher: Matcher,
        max_faces: int = 5,
    ) -> None:
        mismatch = detector_mismatch(detector, embedder)
        if mismatch:
            log.warning("%s", mismatch)
        self.detector = detector
        self.embedder = embedder
        self.matcher = matcher
        self.max_faces = max_faces
        self.timings: dict[str, float] = {}

    def set_matcher(self, matcher: Matcher) -> None:
        """Swap the gallery (SIGHUP reload); the next frame uses it."""
        matcher.gallery.check_model(self.embedder.model_id)
        self.matcher = matcher

    def recognize_faces(
        self, frame_bgr: np.ndarray, detect_image: np.ndarray | None = None
    ) -> list[FaceResult]:
        """Detect, align, embed and match the faces of one frame (at most ``max_faces``);
        per-stage seconds go to ``timings``."""
        t0 = time.perf_counter()
        faces = detect_faces(frame_bgr, self.detector, detect_image)[: self.max_faces]
        t1 = time.perf_counter()
        size = self.embedder.input_size
        crops = [align_face(frame_bgr, f.landmarks, size) for f in faces]
        t2 = time.perf_counter()
        embeddings = (
            self.embedder.embed(np.stack(crops))
            if crops
            else np.zeros((0, self.embedder.embedding_size), np.float32)
        )
        t3 = time.perf_counter()
        matches = self.matcher.match_many(embeddings) if crops else []
        t4 = time.perf_counter()
        self.timings = {"detect": t1 - t0, "align": t2 - t1, "embed": t3 - t2, "match": t4 - t3}
        return [
            FaceResult(f, c, e, m, sharpness(c))
            for f, c, e, m in zip(faces, crops, embeddings, matches, strict=True)
        ]


def recognizer_from_files(
    model_path: str | Path | None,
    gallery_path: str | Path | None,
    detector: DetectorSettings | None = None,
    threads: int = 1,
    threshold: float | None = None,
    margin: float = 0.05,
    strategy: str = "mean",
    max_faces: int = 5,
    flip: bool = False,
    exposure: bool = False,
) -> Recognizer:
    """Everything from paths and settings (``detector=None``: the default, shipped YuNet); the
    scores, threshold and confidence are the model manifest's (:mod:`edge.scoring`), a given
    ``threshold`` replaces the manifest's on the same scale. ``flip``, ``exposure``: test-time options (see Embedder)."""
    embedder = Embedder(resolve_model(model_path), threads=threads, flip=flip, exposure=exposure)
    if gallery_path is None:  # nobody enrolled (the daemon loads its gallery itself)
        gallery = Gallery.create(
            "<empty>", embedder.model_id, embedder.input_size, embedder.embedding_size
        )
    else:
        gallery = Gallery.load(gallery_path)
    gallery.check_model(embedder.model_id)
    matcher = Matcher(gallery, embedder.scoring.with_threshold(threshold), margin, strategy)
    return Recognizer(create_detector(detector), embedder, matcher, max_faces)
