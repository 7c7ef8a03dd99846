"""LFW-style pair files and verification accuracy (cosine similarity, one threshold).

Private minimal version: ``trainer/evaluate.py`` (``read_pairs``, ``verification_metrics``) is
being written in parallel; once it lands these two should be deduplicated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.errors import ConverterError


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool


def read_pairs(path: str | Path, root: str | Path) -> list[Pair]:
    """Parse ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` (View 1) or a View 2 ``pairs.txt``.

    Lines ``Name i j`` (same person) and ``Name1 i Name2 j`` (different); image numbers are
    1-based, files are ``root/Name/Name_%04d.jpg``. A header line of 1 or 2 integers is skipped.
    """
    path, root = Path(path), Path(root)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConverterError(f"{path}: cannot read pairs file ({exc.strerror or exc})") from None
    pairs = []
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or (n == 1 and all(p.isdigit() for p in parts)):
            continue
        try:
            if len(parts) == 3:
                name, i, j = parts
                pairs.append(Pair(_file(root, name, i), _file(root, name, j), True))
            elif len(parts) == 4:
                a, i, b, j = parts
                pairs.append(Pair(_file(root, a, i), _file(root, b, j), False))
            else:
                raise ValueError
        except ValueError:
            raise ConverterError(f"{path}:{n}: not a pair line: {line.strip()!r}") from None
    if not pairs:
        raise ConverterError(f"{path}: no pairs")
    return pairs


def _file(root: Path, name: str, number: str) -> Path:
    return root / name / f"{name}_{int(number):04d}.jpg"


def accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs decided right by ``score >= threshold`` -> same person."""
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(same, bool)))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy; the threshold sits midway between scores."""
    s = np.sort(np.unique(np.asarray(scores, np.float64)))
    candidates = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    same = np.asarray(same, bool)
    # Vectorised: accuracy for every candidate at once (pairs are at most a few thousand).
    acc = ((np.asarray(scores)[None, :] >= candidates[:, None]) == same[None, :]).mean(1)
    best = int(np.argmax(acc))
    return float(candidates[best]), float(acc[best])


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: int = 10) -> float:
    """Mean accuracy over ``folds`` folds, threshold picked on the other folds each time."""
    scores, same = np.asarray(scores), np.asarray(same, bool)
    idx = np.arange(len(scores))
    accs = []
    for k in range(folds):
        test = idx % folds == k
        if not test.any() or test.all():
            continue
        thr, _ = best_threshold(scores[~test], same[~test])
        accs.append(accuracy_at(scores[test], same[test], thr))
    return float(np.mean(accs))


def verification_metrics(
    scores: np.ndarray, same: np.ndarray, threshold: float | None = None
) -> dict[str, float]:
    """Best-threshold accuracy, 10-fold accuracy, and accuracy at a given threshold."""
    thr, acc = best_threshold(scores, same)
    out = {
        "pairs": len(scores),
        "best_threshold": round(thr, 6),
        "accuracy_best": round(acc, 6),
        "accuracy_10fold": round(kfold_accuracy(scores, same), 6),
    }
    if threshold is not None:
        out["threshold"] = round(float(threshold), 6)
        out["accuracy"] = round(accuracy_at(scores, same, threshold), 6)
    return out
