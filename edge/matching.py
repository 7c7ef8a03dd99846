"""Matching an embedding against the gallery: cosine similarity, a threshold, a margin.

Per person, the score is the cosine to the person's mean template (``strategy="mean"``, the
default), to their nearest single sample (``"nearest"``), or the better of the two (``"max"``).
Measured with the shipped model at its threshold on 40 enrolled LFW people and 120 strangers
(benchmarks/bench_matching.py): mean gave the fewest wrong names (6.2% vs 6.7% nearest, 7.1%
max) and the fewest accepted strangers (27.5%, tied with nearest; max 28.3%), for slightly fewer
right names (63.8% vs 65.2% for max). At a door a wrong name costs more than a miss, so mean
is the default.

Decision rule: the best person wins only if their score reaches the threshold AND beats the
runner-up by ``margin``; otherwise the face is unknown (reason ``ambiguous``), so two similar
household members do not flip-flop frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.gallery import Gallery

STRATEGIES = ("max", "mean", "nearest")


@dataclass(frozen=True)
class Match:
    name: str | None  # None: unknown
    score: float  # best person's cosine similarity
    second: float  # runner-up person's score (-1.0 if fewer than two people)
    threshold: float
    reason: str  # "match" | "below_threshold" | "ambiguous" | "empty_gallery"
    candidate: str | None = None  # best person even when unknown (for logs, never published)


class Matcher:
    def __init__(
        self,
        gallery: Gallery,
        threshold: float,
        margin: float = 0.05,
        strategy: str = "mean",
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.gallery = gallery
        self.threshold = float(threshold)
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

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) unit embeddings -> (N, people) similarity per person."""
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        if not self.people:
            return np.zeros((len(embeddings), 0), np.float32)
        mean = embeddings @ self._templates.T
        if self.strategy == "mean":
            return mean
        per_sample = embeddings @ self._samples.T
        nearest = np.full((len(embeddings), len(self.people)), -1.0, np.float32)
        for col in range(len(self.people)):
            nearest[:, col] = per_sample[:, self._owner == col].max(axis=1)
        return nearest if self.strategy == "nearest" else np.maximum(mean, nearest)

    def match(self, embedding: np.ndarray) -> Match:
        return self.match_many(np.atleast_2d(embedding))[0]

    def match_many(self, embeddings: np.ndarray) -> list[Match]:
        scores = self.scores(embeddings)
        return [self._decide(row) for row in scores]

    def _decide(self, row: np.ndarray) -> Match:
        if row.size == 0:
            return Match(None, -1.0, -1.0, self.threshold, "empty_gallery")
        order = np.argsort(row)[::-1]
        best = float(row[order[0]])
        second = float(row[order[1]]) if row.size > 1 else -1.0
        candidate = self.people[order[0]]
        if best < self.threshold:
            return Match(None, best, second, self.threshold, "below_threshold", candidate)
        if best - second < self.margin:
            return Match(None, best, second, self.threshold, "ambiguous", candidate)
        return Match(candidate, best, second, self.threshold, "match", candidate)
