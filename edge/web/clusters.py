"""Grouping unknown faces by similarity, so one stranger's visits are named in one go.

Agglomerative clustering with centroid linkage on the model's score: start with one group per
face, repeatedly merge the two groups whose mean embeddings are most similar, and stop when no
pair reaches the recognition threshold (on the model's score scale): two groups merge only
when their means are as alike as a face must be to an enrolled template to be named, the same
bar the daemon uses to call two strangers "the same face" (``cooldown.unknown_s``). Centroid
linkage is order-independent (unlike assigning faces one by one to the nearest group) and a
mean is steadier than any single pair; it can chain two look-alikes through a bridging face,
which the page shows for a person to split by naming only some faces. Cost: one n x n
similarity matrix, updated per merge (n <= 500 faces: well under a second).
"""

from __future__ import annotations

import numpy as np

from edge.scoring import Scoring


def cluster_faces(embeddings: np.ndarray, scoring: Scoring) -> list[list[int]]:
    """Groups of row indices of ``embeddings`` (unit vectors), biggest first; each group in
    input order. Similarity is the model's score (:mod:`edge.scoring`), the bar its threshold."""
    n = len(embeddings)
    if n == 0:
        return []
    sums = np.asarray(embeddings, np.float64).copy()
    groups: list[list[int]] = [[i] for i in range(n)]
    active = np.ones(n, bool)
    centroids = sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(1e-12)
    offsets = scoring.offsets(centroids)
    sim = scoring.pairwise(centroids, centroids, offsets, offsets)
    np.fill_diagonal(sim, -np.inf)
    while active.sum() > 1:
        i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[i, j] < scoring.threshold:
            break
        i, j = min(i, j), max(i, j)
        sums[i] += sums[j]
        groups[i] += groups[j]
        groups[j] = []
        active[j] = False
        sim[j, :] = sim[:, j] = -np.inf
        centroid = sums[i] / max(np.linalg.norm(sums[i]), 1e-12)
        centroids[i] = centroid
        offsets[i] = scoring.offsets(centroid)[0]
        row = scoring.pairwise(centroids, centroid, offsets, offsets[i : i + 1])[:, 0]
        row[~active] = -np.inf
        row[i] = -np.inf
        sim[i, :] = sim[:, i] = row
    found = [sorted(g) for g in groups if g]
    return sorted(found, key=lambda g: (-len(g), g[0]))
