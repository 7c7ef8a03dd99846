"""How a model's scores are made and read: cosine similarity, optionally normalised against a
cohort of other people's faces, the threshold on that scale, and the calibrated confidence.

Cohort normalisation (the manifest's ``cohort`` block, a ``.npy`` of unit embeddings beside the
model): some faces sit in a crowded part of the embedding space, close to many people (a
common face shape, dark or blurred crops), and reach a high cosine with strangers too. Each
face's *offset* is half the mean of its ``top_k`` cosines to the cohort (one template per
person the model was trained on, never a test person), minus half the cohort's typical value
``reference``; the score of two faces is their cosine minus both offsets::

    score(a, b) = cos(a, b) - (mu_a - reference) / 2 - (mu_b - reference) / 2

so a face in a crowded neighbourhood needs a higher cosine to match. ``reference`` keeps scores
and thresholds on the familiar cosine-like scale (a typical face is not moved). Measured with
the shipped model (docs/BENCHMARKS.md, "Test-time fusion"): strangers accepted in an open-set
household -57% at equal recall, TAR at FAR 1% on identities never trained on +8 points, for
one (1, D) x (D, n) product per face (+0.05 ms) and the cohort file (~190 KiB as float16).

A cohort block may also carry ``gain`` and ``shift`` (default 1 and 0): the normalised score
is then ``gain * score + shift``. ``converter operating-point --rescale`` sets them for a model
whose cosines are not spread like doorface's (dlib's ResNet: every face pair above ~0.8), so
that its threshold, the decision margin and the single-frame bar (``tracking.instant_above``)
mean what they mean for the shipped student: the same confidence slope, the threshold at the
same number.

Without a cohort the score is the plain cosine. The threshold and the confidence fit belong to
the scale the model's manifest declares; :class:`Scoring` keeps the three together so that no
caller compares a normalised score with a cosine threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.confidence import ConfidenceModel, confidence
from edge.errors import ModelError

#: cosines to the cohort averaged per face (``converter operating-point --top-k``): 25 beat 10
#: and 50 on the held-out pairs (benchmarks/bench_test_time.py)
DEFAULT_TOP_K = 25


@dataclass(frozen=True)
class CohortRecord:
    """The manifest's ``cohort`` block: which file, its sha256, and how it is applied."""

    file: str  # name of the .npy beside model.json: (size, D) float16 unit embeddings
    sha256: str
    size: int  # rows (people)
    top_k: int  # cosines averaged per face
    reference: float  # typical top-k mean (keeps scores on the cosine-like scale)
    built_from: str  # what the cohort is, in words
    gain: float = 1.0  # normalised score -> gain * score + shift (converter --rescale)
    shift: float = 0.0

    def to_json(self) -> dict[str, Any]:
        rescaled = {"gain": self.gain, "shift": self.shift} if self.rescaled else {}
        return {
            "file": self.file,
            "sha256": self.sha256,
            "size": self.size,
            "top_k": self.top_k,
            "reference": self.reference,
            "built_from": self.built_from,
            **rescaled,
        }

    @property
    def rescaled(self) -> bool:
        return (self.gain, self.shift) != (1.0, 0.0)

    @classmethod
    def from_json(cls, data: Any, where: str) -> CohortRecord:
        if not isinstance(data, dict):
            raise ModelError(f"{where}: must be a JSON object")
        kinds = {"file": str, "sha256": str, "size": int, "top_k": int, "reference": float}
        for key, kind in {**kinds, "built_from": str}.items():
            value = data.get(key)
            ok = isinstance(value, int | float) if kind is float else isinstance(value, kind)
            if value is None or isinstance(value, bool) or not ok:
                raise ModelError(f"{where}: {key}: missing or not a {kind.__name__}")
        if Path(data["file"]).name != data["file"] or not data["file"].endswith(".npy"):
            raise ModelError(f"{where}: file: must be a .npy file name beside the manifest")
        if not 1 <= data["top_k"] <= data["size"]:
            raise ModelError(f"{where}: top_k: must be between 1 and size ({data['size']})")
        if not math.isfinite(data["reference"]):  # JSON's NaN/Infinity: every score NaN
            raise ModelError(f"{where}: reference: must be a finite number")
        scale = {}
        for key in ("gain", "shift"):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ModelError(f"{where}: {key}: not a number")
                if not math.isfinite(value):
                    raise ModelError(f"{where}: {key}: must be a finite number")
                scale[key] = float(value)
        if scale.get("gain", 1.0) <= 0:
            raise ModelError(f"{where}: gain: must be > 0")
        return cls(**{k: data[k] for k in (*kinds, "built_from")}, **scale)


def load_cohort(record: CohortRecord, folder: Path, embedding_size: int) -> np.ndarray:
    """The cohort embeddings (float32, unit rows), checked against the record: a missing,
    damaged or mismatched file is a one-line :class:`ModelError` naming it."""
    from edge.manifest import sha256_file  # manifest imports this module

    path = folder / record.file
    if not path.is_file():
        raise ModelError(f"{path}: cohort file missing (named by the model's manifest)")
    if sha256_file(path) != record.sha256:
        raise ModelError(f"{path}: sha256 differs from the manifest (wrong or damaged cohort)")
    try:
        cohort = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable .npy cohort ({exc})") from None
    if cohort.shape != (record.size, embedding_size) or not np.all(np.isfinite(cohort)):
        raise ModelError(
            f"{path}: expected {record.size} finite rows of {embedding_size}, got {cohort.shape}"
        )
    cohort = cohort.astype(np.float32)
    return cohort / np.maximum(np.linalg.norm(cohort, axis=1, keepdims=True), 1e-12)


def cohort_means(embeddings: np.ndarray, cohort: np.ndarray, top_k: int) -> np.ndarray:
    """(N, D) unit embeddings -> (N,) mean of each one's ``top_k`` cosines to the cohort."""
    sims = np.atleast_2d(embeddings) @ cohort.T
    return -np.partition(-sims, top_k - 1, axis=1)[:, :top_k].mean(axis=1)


@dataclass(frozen=True)
class Scoring:
    """A model's score scale: threshold, optional cohort, optional confidence calibration."""

    threshold: float
    calibration: ConfidenceModel | None = None
    cohort: np.ndarray | None = field(default=None, repr=False)  # (n, D) float32 unit rows
    top_k: int = 0
    reference: float = 0.0
    gain: float = 1.0  # cohort scores -> gain * score + shift (CohortRecord)
    shift: float = 0.0

    @property
    def kind(self) -> str:
        return "cosine" if self.cohort is None else f"cohort-normalised cosine (top {self.top_k})"

    def with_threshold(self, threshold: float | None) -> Scoring:
        """The same scale with another threshold (None: keep the model's)."""
        return self if threshold is None else replace(self, threshold=float(threshold))

    def offsets(self, embeddings: np.ndarray) -> np.ndarray:
        """(N,) what each face's scores are lowered by (zeros without a cohort)."""
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        if self.cohort is None or not len(embeddings):
            return np.zeros(len(embeddings), np.float32)
        means = cohort_means(embeddings, self.cohort, self.top_k)
        return (0.5 * (means - self.reference)).astype(np.float32)

    def pairwise(
        self,
        a: np.ndarray,
        b: np.ndarray,
        a_offsets: np.ndarray | None = None,
        b_offsets: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N, M) scores of unit embeddings ``a`` against ``b``; pass offsets already known."""
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        return self._on_scale(a @ b.T, a, b, a_offsets, b_offsets, outer=True)

    def rowwise(
        self,
        a: np.ndarray,
        b: np.ndarray,
        a_offsets: np.ndarray | None = None,
        b_offsets: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N,) scores of ``a[k]`` against ``b[k]``: the diagonal of :meth:`pairwise`, for pair
        lists, without the N x N product."""
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        return self._on_scale(np.sum(a * b, axis=1), a, b, a_offsets, b_offsets, outer=False)

    def _on_scale(
        self,
        cosines: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        a_offsets: np.ndarray | None,
        b_offsets: np.ndarray | None,
        outer: bool,
    ) -> np.ndarray:
        """Cosines of ``a`` and ``b`` (every pair when ``outer``, else row by row) on the
        manifest's scale: less both faces' cohort offsets, then ``gain * score + shift``."""
        if self.cohort is None:
            return cosines
        a_off = self.offsets(a) if a_offsets is None else a_offsets
        b_off = self.offsets(b) if b_offsets is None else b_offsets
        if outer:
            a_off, b_off = a_off[:, None], b_off[None, :]
        normalised = cosines - a_off - b_off
        if (self.gain, self.shift) == (1.0, 0.0):
            return normalised
        return self.gain * normalised + self.shift

    def confidence_of(self, score: float) -> float | None:
        """P(same person) for a score on this scale, or None without a calibration."""
        return None if self.calibration is None else confidence(score, self.calibration)
