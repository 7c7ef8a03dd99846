"""Small maths shared by converter tests."""

from __future__ import annotations

import numpy as np


def same_vs_different(emb: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(mean same-person cosine - mean different-person cosine, ROC AUC of same vs different)."""
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = e @ e.T
    iu = np.triu_indices(len(e), k=1)
    s = sims[iu]
    same = (labels[:, None] == labels[None, :])[iu]
    pos, neg = s[same], s[~same]
    # AUC = P(random same-pair cosine > random different-pair cosine), by ranks.
    order = np.argsort(np.concatenate([pos, neg]))
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    auc = (ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    return float(pos.mean() - neg.mean()), float(auc)
