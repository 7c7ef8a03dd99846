"""Verification and identification maths over similarity scores (NumPy only) + LFW pair files.

Scores are cosine similarities (higher = more alike); ``same`` is a boolean array. Nothing
here imports TensorFlow, so benchmarks and the converter can use it on any model's output.

* :func:`kfold_accuracy`: LFW protocol, 10 folds; each fold's threshold is the best one on the
  other nine, so the accuracy is not tuned on the pairs it scores.
* :func:`roc_curve` / :func:`roc_auc`: exact ROC over every distinct score, AUC by trapezoids
  (ties handled).
* :func:`eer`: equal error rate, interpolated where FAR and FRR cross.
* :func:`tar_at_far`: true-accept rate at the threshold whose false-accept rate is <= the target.
* :func:`best_threshold`: the threshold maximising accuracy (midpoint between scores).
* :func:`one_shot_identification`: N-way one-shot: one gallery image of each of N people, a
  probe of one of them; accuracy of the nearest-neighbour pick over random trials.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.files import FileError, read_regular
from trainer.errors import DataError

MAX_PAIRS_BYTES = 64_000_000  # LFW's View 2 list is 0.1 MB


def read_pairs(path: str | Path, root: str | Path) -> list[tuple[Path, Path, bool]]:
    """Parse an LFW pairs file into (image_a, image_b, same) under ``root``.

    First line: ``count`` (View 1) or ``folds count`` (View 2); then ``Name i j`` (same) or
    ``Name1 i Name2 j`` (different); images at ROOT/Name/Name_%04d.jpg. Missing images are
    not checked here (see :func:`missing_images`).
    """
    path, root = Path(path), Path(root)
    try:
        lines = read_regular(path, MAX_PAIRS_BYTES).decode("utf-8").splitlines()
    except FileError as exc:
        raise DataError(f"{exc} (pairs file expected)") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not an LFW pairs file (not UTF-8 text)") from None
    if not lines or not all(t.isdigit() for t in lines[0].split()) or not lines[0].split():
        raise DataError(f"{path}: not an LFW pairs file (first line must be a count)")

    def img(name: str, i: str) -> Path:
        return root / name / f"{name}_{int(i):04d}.jpg"

    pairs: list[tuple[Path, Path, bool]] = []
    for n, line in enumerate(lines[1:], start=2):
        f = line.split()
        try:
            if len(f) == 3:
                pairs.append((img(f[0], f[1]), img(f[0], f[2]), True))
            elif len(f) == 4:
                pairs.append((img(f[0], f[1]), img(f[2], f[3]), False))
            elif f:
                raise ValueError
        except ValueError:
            raise DataError(f"{path}:{n}: expected 'Name i j' or 'Name1 i Name2 j'") from None
    if not pairs:
        raise DataError(f"{path}: holds no pairs")
    return pairs


def accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(same, bool)))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold (score >= t means same) with the highest accuracy; midpoint between scores."""
    s = np.sort(np.unique(np.asarray(scores, np.float64)))
    candidates = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    same = np.asarray(same, bool)
    scores = np.asarray(scores, np.float64)
    # accuracy for every candidate at once via sorting
    order = np.argsort(scores)
    ss, yy = scores[order], same[order]
    # number of pairs with score < t: searchsorted
    below = np.searchsorted(ss, candidates, side="left")
    same_below = np.concatenate([[0], np.cumsum(yy)])[below]
    diff_below = below - same_below
    correct = diff_below + (yy.sum() - same_below)
    return float(candidates[int(np.argmax(correct))])


def kfold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: int = 10
) -> tuple[float, float, list[float]]:
    """(mean accuracy, std, per-fold thresholds): threshold picked on the other folds.

    Folds are contiguous blocks, as in LFW's files (each fold balances same/different when
    the file is ordered by fold); for View 1 files the pairs are interleaved first so every
    fold holds both kinds.
    """
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    n = len(scores)
    if n < folds:
        raise ValueError(f"need at least {folds} pairs for {folds}-fold accuracy, got {n}")
    idx = _interleave(same)
    parts = np.array_split(idx, folds)
    accs, thresholds = [], []
    for k in range(folds):
        test = parts[k]
        train = np.concatenate([parts[j] for j in range(folds) if j != k])
        t = best_threshold(scores[train], same[train])
        thresholds.append(t)
        accs.append(accuracy_at(scores[test], same[test], t))
    return float(np.mean(accs)), float(np.std(accs)), thresholds


def _interleave(same: np.ndarray) -> np.ndarray:
    """Indices ordered so same and different pairs alternate (stable within each kind)."""
    pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
    out = []
    for i in range(max(len(pos), len(neg))):
        if i < len(pos):
            out.append(pos[i])
        if i < len(neg):
            out.append(neg[i])
    return np.asarray(out, np.int64)


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, thresholds) for thresholds at every distinct score, from strict to loose."""
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    n_pos, n_neg = same.sum(), (~same).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC needs both same and different pairs")
    thresholds = np.unique(scores)[::-1]
    order = np.argsort(-scores, kind="stable")
    s_sorted, y_sorted = scores[order], same[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    # last index of each distinct score (ties move together)
    last = np.searchsorted(-s_sorted, -thresholds, side="right") - 1
    tar = np.concatenate([[0.0], tp[last] / n_pos])
    far = np.concatenate([[0.0], fp[last] / n_neg])
    return far, tar, np.concatenate([[np.inf], thresholds])


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    far, tar, _ = roc_curve(scores, same)
    return float(np.trapezoid(tar, far))


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate: where FAR = FRR = 1 - TAR, linearly interpolated on the ROC."""
    far, tar, _ = roc_curve(scores, same)
    frr = 1.0 - tar
    diff = far - frr  # increasing from -1 to 1
    i = int(np.searchsorted(diff, 0.0))
    if i == 0:
        return float(far[0])
    d0, d1 = diff[i - 1], diff[i]
    w = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    return float(far[i - 1] + w * (far[i] - far[i - 1]))


def tar_at_far(scores: np.ndarray, same: np.ndarray, target_far: float) -> float:
    """Highest TAR among thresholds whose FAR <= target (0 if even the strictest exceeds it)."""
    far, tar, _ = roc_curve(scores, same)
    ok = far <= target_far + 1e-12
    return float(tar[ok].max()) if ok.any() else 0.0


def threshold_at_far(scores: np.ndarray, same: np.ndarray, target_far: float) -> float:
    """The loosest threshold whose FAR is <= target: the operating point for "never call a
    stranger by someone's name" (a door camera), rather than the accuracy-optimal one."""
    far, _, thresholds = roc_curve(scores, same)
    ok = np.flatnonzero(far <= target_far + 1e-12)
    return float(thresholds[ok[-1]])


def holdout_thresholds(scores: np.ndarray, same: np.ndarray) -> dict:
    """Thresholds at FAR 1e-2 and 1e-3 on pairs of identities the model never trained on,
    and the true-accept rate at each: the operating points a door can be set to."""
    out = {"pairs": len(same), "different_pairs": int((~same).sum())}
    for far in (1e-2, 1e-3):
        t = threshold_at_far(scores, same, far)
        out[f"threshold_at_far_{far:.0e}".replace("e-0", "e-")] = t
        out[f"tar_at_far_{far:.0e}".replace("e-0", "e-")] = float(np.mean(scores[same] >= t))
    return out


def verification_metrics(
    scores: np.ndarray, same: np.ndarray, *, folds: int = 10, threshold: float | None = None
) -> dict:
    """Every verification number as a JSON-ready dict.

    ``threshold``: a threshold chosen elsewhere (e.g. on pairsDevTrain); its accuracy on these
    pairs is reported as ``accuracy_at_threshold``. ``best_threshold`` is fit on these pairs
    (optimistic; the threshold to ship is the one fit on other pairs or the 10-fold mean).
    """
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    acc, std, thresholds = kfold_accuracy(scores, same, folds)
    out = {
        "pairs": len(scores),
        "same_pairs": int(same.sum()),
        "kfold_accuracy": acc,
        "kfold_std": std,
        "kfold_threshold": float(np.mean(thresholds)),
        "auc": roc_auc(scores, same),
        "eer": eer(scores, same),
        "tar_at_far_1e-2": tar_at_far(scores, same, 1e-2),
        "tar_at_far_1e-3": tar_at_far(scores, same, 1e-3),
        "threshold_at_far_1e-2": threshold_at_far(scores, same, 1e-2),
        "best_threshold": best_threshold(scores, same),
        "mean_same": float(scores[same].mean()) if same.any() else float("nan"),
        "mean_different": float(scores[~same].mean()) if (~same).any() else float("nan"),
    }
    if threshold is not None:
        out["threshold"] = float(threshold)
        out["accuracy_at_threshold"] = accuracy_at(scores, same, threshold)
    return out


def one_shot_identification(
    embeddings: np.ndarray,
    labels: np.ndarray,
    n_way: int = 20,
    trials: int = 1000,
    seed: int = 0,
    metric: str = "cosine",
) -> float:
    """N-way one-shot accuracy: gallery of one image each of ``n_way`` people, probe another
    image of one of them; the nearest gallery image must be the probe's person. ``metric``:
    "cosine" (doorface) or "euclidean" (dlib/face_recognition's own, for comparisons)."""
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be cosine or euclidean, got {metric!r}")
    emb = np.asarray(embeddings, np.float64)
    if metric == "cosine":
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    hits = 0
    for probe, gallery in identification_trials(labels, n_way, trials, seed):
        if metric == "cosine":
            hits += int(np.argmax(emb[gallery] @ emb[probe]) == 0)
        else:
            hits += int(np.argmin(np.linalg.norm(emb[gallery] - emb[probe], axis=1)) == 0)
    return hits / trials


def one_shot_from_scores(
    scores: np.ndarray, labels: np.ndarray, n_way: int = 100, trials: int = 1000, seed: int = 0
) -> float:
    """:func:`one_shot_identification`'s trials over any (N, N) score matrix, higher = more
    alike: for scores that are not a plain cosine of two embeddings (cohort-normalised ones)."""
    hits = 0
    for probe, gallery in identification_trials(labels, n_way, trials, seed):
        hits += int(np.argmax(scores[probe, gallery]) == 0)
    return hits / trials


def identification_trials(labels: np.ndarray, n_way: int, trials: int, seed: int = 0):
    """The seeded trials of one-shot identification: (probe, gallery) index pairs, the gallery
    one image each of ``n_way`` people with the probe's person first."""
    labels = np.asarray(labels)
    uniq, counts = np.unique(labels, return_counts=True)
    multi = uniq[counts >= 2]
    if len(multi) < 1 or len(uniq) < n_way:
        raise ValueError(f"{n_way}-way identification needs {n_way} people, one with 2+ images")
    by = {u: np.flatnonzero(labels == u) for u in uniq}
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        target = rng.choice(multi)
        others = rng.choice(uniq[uniq != target], n_way - 1, replace=False)
        probe, ref = rng.choice(by[target], 2, replace=False)
        yield probe, [ref] + [rng.choice(by[o]) for o in others]


def row_cosines(emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of embeddings that need not be unit length (a Keras model's
    during training). For unit embeddings on a model's score scale (cohort, rescale), see
    :func:`converter.embed.pair_scores`."""
    a = emb_a / np.maximum(np.linalg.norm(emb_a, axis=1, keepdims=True), 1e-12)
    b = emb_b / np.maximum(np.linalg.norm(emb_b, axis=1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=1)


def sampled_pairs(
    labels: np.ndarray, n: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same): ``n`` random same pairs and ``n`` random different pairs (validation)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    uniq, counts = np.unique(labels, return_counts=True)
    multi = uniq[counts >= 2]
    by = {u: np.flatnonzero(labels == u) for u in uniq}
    ii, jj, ss = [], [], []
    for _ in range(n if len(multi) else 0):
        a, b = rng.choice(by[rng.choice(multi)], 2, replace=False)
        ii.append(a)
        jj.append(b)
        ss.append(True)
    for _ in range(n if len(uniq) >= 2 else 0):
        u, v = rng.choice(uniq, 2, replace=False)
        ii.append(rng.choice(by[u]))
        jj.append(rng.choice(by[v]))
        ss.append(False)
    return np.asarray(ii, np.int64), np.asarray(jj, np.int64), np.asarray(ss, bool)
