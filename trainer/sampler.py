"""P x K batch sampling: P identities with K images each, plus optional one-image identities.

Triplet and contrastive losses need positives in every batch, so we draw identities, not
images. Identities with fewer than K images are sampled with replacement (repeats are then
distinguished only by augmentation); identities with one image can never form a positive and
are only added as extra negatives (``singletons`` per batch). A ``numpy.random.Generator``
seeded once makes the sequence reproducible. Trade-off: identities are drawn uniformly, so a
person with 500 images is seen as often as one with 2; that favours breadth over depth.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from trainer.errors import TrainingError


class PKSampler:
    """Yields index arrays of length P*K (+ singletons) into the face arrays."""

    def __init__(
        self,
        labels: np.ndarray,
        p: int,
        k: int,
        *,
        singletons: int = 0,
        seed: int = 0,
    ) -> None:
        if p < 2 or k < 2:
            raise TrainingError(f"P x K batches need P >= 2 and K >= 2, got {p} x {k}")
        labels = np.asarray(labels)
        self.p, self.k, self.singletons = p, k, singletons
        order = np.argsort(labels, kind="stable")
        uniq, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
        groups = {int(u): order[s : s + c] for u, s, c in zip(uniq, starts, counts, strict=True)}
        self.multi = [g for g in groups.values() if len(g) >= 2]
        self.single = np.asarray([g[0] for g in groups.values() if len(g) == 1], dtype=np.int64)
        if len(self.multi) < p:
            raise TrainingError(
                f"need at least P={p} identities with 2+ images, found {len(self.multi)}"
            )
        self.rng = np.random.default_rng(seed)

    @property
    def batch_size(self) -> int:
        return self.p * self.k + min(self.singletons, len(self.single))

    def batch(self) -> np.ndarray:
        people = self.rng.choice(len(self.multi), self.p, replace=False)
        parts = []
        for i in people:
            group = self.multi[i]
            parts.append(self.rng.choice(group, self.k, replace=len(group) < self.k))
        n_single = min(self.singletons, len(self.single))
        if n_single:
            parts.append(self.rng.choice(self.single, n_single, replace=False))
        return np.concatenate(parts).astype(np.int64)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.batch()
