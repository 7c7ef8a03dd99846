"""Matching an embedding against the gallery: the model's score, a threshold, a margin.

Scores are the model's (:class:`edge.scoring.Scoring`): cosine similarity, normalised against
the model's cohort when its manifest has one; the threshold and confidence are on that scale.

Per person, the score is the one to the person's mean template (``strategy="mean"``, the
default), to their nearest single sample (``"nearest"``), or the better of the two (``"max"``).
Measured with the shipped model at its threshold on 40 enrolled LFW people and 120 strangers
(benchmarks/bench_matching.py): mean gave the fewest wrong names (6.2% vs 6.7% nearest, 7.1%
max) and the fewest accepted strangers (27.5%, tied with nearest; max 28.3%), for slightly fewer
right names (63.8% vs 65.2% for max). At a door a wrong name costs more than a miss, so mean
is the default.

Decision rule: the best person wins only if their score reaches the threshold AND beats the
runner-up by ``margin``; otherwise the face is unknown (reason ``ambiguous``), so two similar
household members do not flip-flop frame to frame. It fails closed: a NaN score, threshold or
margin never names anyone.

Negative examples ("not Alice", set in the web app: :meth:`edge.gallery.Gallery.add_negative`):
a face that would match Alice is unknown instead (reason ``negative``) when it is at least as
close to one of Alice's negative examples as to Alice's own score. The look-alike who was
wrongly named is rejected the next time, while Alice, closer to her template than to a
stranger's face, still matches. Effect on false and true accepts: docs/BENCHMARKS.md ("Web").

Confidence: with the model's calibration (the manifest's ``confidence`` block, see
:mod:`edge.confidence`), every match also carries P(same person) for its best score, so "is
this Alice" reads as a probability; without one it is None. It never changes the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.gallery import Gallery
from edge.scoring import Scoring

STRATEGIES = ("max", "mean", "nearest")


@dataclass(frozen=True)
class Match:
    name: str | None  # None: unknown
    score: float  # best person's score (the model's scale: edge/scoring.py)
    second: float  # runner-up person's score (-1.0 if fewer than two people)
    threshold: float
    reason: str  # "match" | "below_threshold" | "ambiguous" | "negative" | "empty_gallery"
    candidate: str | None = None  # best person even when unknown (for logs, never published)
    confidence: float | None = None  # P(same person as candidate); None: no calibration


class Matcher:
    """A gallery under a model's :class:`Scoring`; a threshold override goes through
    ``scoring.with_threshold`` so it always stays on the model's scale."""

    def __init__(
        self,
        gallery: Gallery,
        scoring: Scoring,
        margin: float = 0.05,
        strategy: str = "mean",
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.gallery = gallery
        self.scoring = scoring
        self.margin = float(margin)
        self.strategy = strategy
        self.people = gallery.people
        index = {name: i for i, name in enumerate(self.people)}
        self._owner = np.array([index[n] for n in gallery.names.tolist()], np.int64)
        self._samples = gallery.embeddings.astype(np.float32)
        templates = np.zeros((len(self.people), gallery.embedding_size), np.float32)
        np.add.at(templates, self._owner, self._samples)
        norms = np.linalg.norm(templates, axis=1, keepdims=True)
        self._templates = templates / np.maximum(norms, 1e-12)
        self._template_offsets = scoring.offsets(self._templates)
        self._sample_offsets = scoring.offsets(self._samples)
        negative = gallery.negative_names
        self._negatives = {  # person -> (K, D) faces that are not them, and their offsets
            name: (faces, scoring.offsets(faces))
            for name in set(negative.tolist())
            for faces in [gallery.negative_embeddings[negative == name].astype(np.float32)]
        }

    @property
    def threshold(self) -> float:
        return self.scoring.threshold

    def with_gallery(self, gallery: Gallery) -> Matcher:
        """The same settings over another gallery (a reload)."""
        return Matcher(gallery, self.scoring, self.margin, self.strategy)

    def scores(self, embeddings: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        """(N, D) unit embeddings -> (N, people) score per person."""
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        if not self.people:
            return np.zeros((len(embeddings), 0), np.float32)
        if offsets is None:
            offsets = self.scoring.offsets(embeddings)
        pair = self.scoring.pairwise
        mean = pair(embeddings, self._templates, offsets, self._template_offsets)
        if self.strategy == "mean":
            return mean
        per_sample = pair(embeddings, self._samples, offsets, self._sample_offsets)
        nearest = np.full((len(embeddings), len(self.people)), -np.inf, np.float32)
        for col in range(len(self.people)):
            nearest[:, col] = per_sample[:, self._owner == col].max(axis=1)
        return nearest if self.strategy == "nearest" else np.maximum(mean, nearest)

    def confidence_of(self, score: float) -> float | None:
        """P(same person) for a score under the model's calibration, or None."""
        return self.scoring.confidence_of(score)

    def match(self, embedding: np.ndarray) -> Match:
        return self.match_many(np.atleast_2d(embedding))[0]

    def match_many(self, embeddings: np.ndarray) -> list[Match]:
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        offsets = self.scoring.offsets(embeddings)
        scores = self.scores(embeddings, offsets)
        return [
            self._decide(row, e, off)
            for row, e, off in zip(scores, embeddings, offsets, strict=True)
        ]

    def negative_score(
        self, embedding: np.ndarray, name: str, offset: float | None = None
    ) -> float:
        """Score of ``embedding`` against the closest negative example of ``name`` (-inf:
        none)."""
        faces, offsets = self._negatives.get(name, (None, None))
        if faces is None or not len(faces):
            return -np.inf
        own = None if offset is None else np.array([offset], np.float32)
        return float(self.scoring.pairwise(embedding, faces, own, offsets).max())

    def _decide(self, row: np.ndarray, embedding: np.ndarray, offset: float) -> Match:
        if row.size == 0:
            return Match(None, -1.0, -1.0, self.threshold, "empty_gallery")
        order = np.argsort(row)[::-1]
        best = float(row[order[0]])
        second = float(row[order[1]]) if row.size > 1 else -1.0
        candidate = self.people[order[0]]
        reason = self._reason(best, second)
        if reason == "match" and not self.negative_score(embedding, candidate, offset) < best:
            reason = "negative"  # as close to a "not <candidate>" face: fails closed on NaN too
        name = candidate if reason == "match" else None
        return Match(
            name, best, second, self.threshold, reason, candidate, self.confidence_of(best)
        )

    def _reason(self, best: float, second: float) -> str:
        """Threshold and margin. Fails closed: each test asks "is it safe to name?", so a NaN
        score, threshold or margin (every comparison with NaN is False) is no match."""
        if not best >= self.threshold:
            return "below_threshold"
        if not best - second >= self.margin:
            return "ambiguous"
        return "match"
