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
#: The default encoder: dlib's face recognition ResNet as full-integer int8 (converter
#: import-dlib; docs/MODEL.md): 5.5 MiB, 150 px dlib chips, 0.98 on LFW pairs.
DEFAULT_MODEL = MODELS_DIR / "dlib-resnet-v1.tflite"
#: dlib's ResNet pruned to 0.76 M parameters and distilled back onto it (trainer prune-dlib):
#: 0.84 MB, 150 px dlib chips, 0.96 on LFW pairs, a third of the default's time per face; for
#: a machine the default is too slow on (``recognition.model = "doorface-small"``).
SMALL_MODEL = MODELS_DIR / "doorface-small.tflite"
#: Shipped models by name: what ``recognition.model`` / ``--model`` may say instead of a path.
SHIPPED_MODELS = {p.stem: p for p in (DEFAULT_MODEL, SMALL_MODEL)}


@dataclass
class FaceResult:
    face: Face
    crop: np.ndarray = field(repr=False)  # aligned RGB uint8
    embedding: np.ndarray = field(repr=False)  # unit float32 (D,)
    match: Match
    sharpness: float  # variance of the Laplacian of the grey crop: low = blurry


#: Side at which :func:`sharpness` is measured: doorface's 64 px crop, where the gates
#: (``tracking.min_sharpness``, enrolment's) were set. A larger model input (dlib's 150 px
#: chip) is an enlarged, smoother image of the same face: measured as it is, its dark visits
#: fell under the gate and went silent.
SHARPNESS_SIDE = 64


def sharpness(crop_rgb: np.ndarray) -> float:
    """Variance of the Laplacian at :data:`SHARPNESS_SIDE` px: the usual cheap focus measure
    (higher is sharper), the same scale for every model's crop size."""
    grey = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY)
    if grey.shape[:2] != (SHARPNESS_SIDE, SHARPNESS_SIDE):
        grey = cv2.resize(grey, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def resolve_model(model: str | Path | None) -> Path:
    """The model to use: the given path, a shipped model's name (:data:`SHIPPED_MODELS`), or
    the default model shipped inside the package."""
    if model and str(model) in SHIPPED_MODELS:
        return SHIPPED_MODELS[str(model)]
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
        size, how = self.embedder.input_size, self.embedder.preprocessing
        crops = [align_face(frame_bgr, f.landmarks, size, how) for f in faces]
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
    zoom: bool = False,
) -> Recognizer:
    """Everything from paths and settings (``detector=None``: the default, shipped YuNet); the
    scores, threshold and confidence are the model manifest's (:mod:`edge.scoring`), a given
    ``threshold`` replaces the manifest's on the same scale. ``flip``, ``exposure``, ``zoom``: test-time options (see Embedder)."""
    embedder = Embedder(
        resolve_model(model_path), threads=threads, flip=flip, exposure=exposure, zoom=zoom
    )
    if gallery_path is None:  # nobody enrolled (the daemon loads its gallery itself)
        gallery = Gallery.create(
            "<empty>", embedder.model_id, embedder.input_size, embedder.embedding_size
        )
    else:
        gallery = Gallery.load(gallery_path)
    gallery.check_model(embedder.model_id)
    matcher = Matcher(gallery, embedder.scoring.with_threshold(threshold), margin, strategy)
    return Recognizer(create_detector(detector), embedder, matcher, max_faces)
