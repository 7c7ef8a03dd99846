"""Test-time fusion: flip fusion and cohort score normalisation against their cost, and the
calibrated ``confidence``.

    .venv/bin/python benchmarks/bench_test_time.py [--model M.tflite] [--no-write]

Every threshold, every selected setting and the confidence fit come from identities the model
never trained on: the trainer's held-out split (``split_by_identity(faces, 0.05, seed=0)`` of
LFW minus the people of pairsDevTest plus the CelebA subset, drawn exactly as ``trainer train
--seed 0`` draws it). Scored on people of ``pairsDevTest.txt`` only:

- its 1000 pairs: 10-fold accuracy, TAR and FAR at the held-out thresholds (FAR 1e-2, 1e-3);
- every pair of their photos (up to 10 each, as ``trainer evaluate``'s identification set):
  millions of different pairs, so FAR 1e-3 is resolved; false accepts at equal recall (FAR at
  the threshold giving TAR 0.5 and 0.8);
- one-shot 100-way identification (1000 trials, ``trainer evaluate``'s protocol);
- an open-set household: 40 people enrolled from 3 photos (mean template), their other photos
  as visitors, everyone else's photos as strangers, 20 seeded draws; strangers accepted and
  wrong names at the threshold where 70% of visitors get the right name (no margin rule).

Flip fusion: each crop and its mirror image embedded, averaged, re-normalised
(``Embedder(flip=True)``). Cohort normalisation: each face's cosine to a cohort of
training-split faces (people the model trained on, never test people); adaptive s-norm
``0.5 * ((s - mu_a) / sd_a + (s - mu_b) / sd_b)`` or cohort-mean subtraction
``s - (mu_a + mu_b) / 2`` over the top-k cohort scores; the cohort (random training faces,
or one mean template per training identity), k and variant chosen on the held-out pairs.
The shipped choice is written into a model's manifest by ``converter operating-point``
(converter/operating_point.py), which also fits the threshold and confidence on its scale;
the last paragraph here scores the manifest's own operating point (:class:`edge.scoring.Scoring`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import markdown_table, write_section
from benchmarks.frames import LFW, SHARED
from converter.embed import pair_scores
from edge.confidence import ConfidenceModel, confidence
from edge.detectors import TRAINING_DETECTOR, create_detector
from edge.embedder import RECOGNITION_EXPOSURE, RECOGNITION_FLIP, Embedder
from edge.pipeline import resolve_model
from edge.scoring import CohortRecord, Scoring
from trainer.calibration import all_pairs, fit_confidence, subsample_different
from trainer.data import file_crops, identification_set, load_faces, pair_crops, split_by_identity
from trainer.evaluate import (
    kfold_accuracy,
    one_shot_from_scores,
    one_shot_identification,
    read_pairs,
    roc_curve,
    threshold_at_far,
)

DATA = SHARED / "data"
PAIRS = DATA / "lfw-view1" / "pairsDevTest.txt"
ROOTS = [DATA / "lfw", DATA / "celeba-subset"]
RESULTS = ROOT / "benchmarks" / "results" / "test_time.json"
SEED, VAL_FRACTION = 0, 0.05  # trainer train's defaults: the shipped model's split
FARS = (1e-2, 1e-3)
COHORT_FACES, COHORT_KS, VARIANTS = (1000, 4000), (10, 25, 50), ("s-norm", "mean")
CALIBRATION_NEGATIVES = 20000


@dataclass
class Faces:
    crops: np.ndarray
    labels: np.ndarray


# -- scorers: cosine, or cosine normalised against a cohort --------------------------------
class Cosine:
    name = "cosine"

    def matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b.T

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sum(a * b, axis=1)


@dataclass
class CohortNorm:
    """Score normalisation by each face's top-k cosine to a cohort of other people's faces."""

    cohort: np.ndarray  # (n, D) unit embeddings
    pool: str  # what the cohort is, in words
    k: int
    variant: str  # "s-norm" | "mean"

    @property
    def name(self) -> str:
        return f"{self.variant}, {len(self.cohort)} {self.pool}, top {self.k}"

    def stats(self, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top = -np.partition(-(e @ self.cohort.T), self.k - 1, axis=1)[:, : self.k]
        return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)

    def normalise(self, s, ma, sa, mb, sb):
        if self.variant == "mean":
            return s - 0.5 * (ma + mb)
        return 0.5 * ((s - ma) / sa + (s - mb) / sb)

    def matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        (ma, sa), (mb, sb) = self.stats(a), self.stats(b)
        return self.normalise(a @ b.T, ma[:, None], sa[:, None], mb[None, :], sb[None, :])

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        (ma, sa), (mb, sb) = self.stats(a), self.stats(b)
        return self.normalise(np.sum(a * b, axis=1), ma, sa, mb, sb)


def upper_pairs(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair of a square score matrix over labelled faces: (scores, same)."""
    i, j = np.triu_indices(len(labels), 1)
    return scores[i, j], labels[i] == labels[j]


# -- data --------------------------------------------------------------------------------
def load_data(size: int, preprocessing: str) -> dict[str, object]:
    """Every face set, aligned as the model takes them (its input size and preprocessing)."""
    detector = create_detector(TRAINING_DETECTOR)
    how = {"progress": True, "preprocessing": preprocessing}  # tqdm bars on stderr
    faces = load_faces(ROOTS, size, detector=detector, exclude_pairs=[PAIRS], **how)
    train, val = split_by_identity(faces, VAL_FRACTION, SEED)
    assert val is not None
    pairs = read_pairs(PAIRS, LFW)
    crops, ia, ib, same, _ = pair_crops(pairs, detector, size, **how)
    files, labels = identification_set(PAIRS, LFW, per_person=10)
    id_crops, kept, _ = file_crops(files, detector, size, **how)
    return {
        "held_out": Faces(val.crops, val.labels),
        "held_out_names": val.names,
        "training": Faces(train.crops, train.labels),
        "pairs": (crops, ia, ib, same),
        "test_people": Faces(id_crops, labels[kept]),
    }


# -- metrics -----------------------------------------------------------------------------
def far_at_tar(scores: np.ndarray, same: np.ndarray, tar_target: float) -> float:
    """False-accept rate at the strictest threshold whose true-accept rate reaches the target."""
    far, tar, _ = roc_curve(scores, same)
    return float(far[np.searchsorted(tar, tar_target - 1e-12)])


def rates_at(scores: np.ndarray, same: np.ndarray, t: float) -> tuple[float, float]:
    return float(np.mean(scores[same] >= t)), float(np.mean(scores[~same] >= t))


def open_set(emb: np.ndarray, labels: np.ndarray, scorer, draws=20, people=40, enrol=3) -> dict:
    """Stranger-accept and wrong-name rates at the threshold giving 70% right names."""
    names, counts = np.unique(labels, return_counts=True)
    rich = names[counts >= enrol + 2]
    best, right, stranger = [], [], []
    for d in range(draws):
        rng = np.random.default_rng(d)
        chosen = rng.permutation(rich)[:people]
        templates, probes, truth = [], [], []
        for p, name in enumerate(chosen):
            idx = np.flatnonzero(labels == name)
            t = emb[idx[:enrol]].sum(axis=0)
            templates.append(t / np.linalg.norm(t))
            probes.append(idx[enrol:])
            truth += [p] * (len(idx) - enrol)
        strangers = np.flatnonzero(~np.isin(labels, chosen))
        probe_idx = np.concatenate(probes)
        s = scorer.matrix(emb[np.concatenate([probe_idx, strangers])], np.stack(templates))
        best.append(s.max(axis=1))
        right.append(s[: len(probe_idx)].argmax(axis=1) == np.asarray(truth))
        stranger.append(np.r_[np.zeros(len(probe_idx), bool), np.ones(len(strangers), bool)])
    best, stranger = np.concatenate(best), np.concatenate(stranger)
    right = np.concatenate(right)
    visitor = best[~stranger]
    ranked = np.sort(visitor[right])[::-1]
    need = int(np.ceil(0.7 * len(visitor)))
    if len(ranked) < need:
        raise SystemExit(f"open set: only {len(ranked)}/{len(visitor)} visitors ranked right")
    t = ranked[need - 1]
    return {
        "visitors": len(visitor),
        "strangers": int(stranger.sum()),
        "stranger_accepted": float(np.mean(best[stranger] >= t)),
        "wrong_name": float(np.mean((visitor >= t) & ~right)),
    }


def evaluate(method: str, emb: dict, scorer, data: dict) -> dict:
    """Every verification/identification number of one embedding mode + scorer."""
    held = data["held_out"]
    h_scores, h_same = upper_pairs(scorer.matrix(emb["held_out"], emb["held_out"]), held.labels)
    thresholds = [threshold_at_far(h_scores, h_same, f) for f in FARS]
    _, ia, ib, same = data["pairs"]
    p = scorer.pairs(emb["pairs"][ia], emb["pairs"][ib])
    people = data["test_people"]
    t_matrix = scorer.matrix(emb["test_people"], emb["test_people"])
    a_scores, a_same = upper_pairs(t_matrix, people.labels)
    row = {
        "method": method,
        "kfold_accuracy": kfold_accuracy(p, same)[0],
        "one_shot_100way": one_shot_from_scores(t_matrix, people.labels),
        "all_pairs": {"same": int(a_same.sum()), "different": int((~a_same).sum())},
        "far_at_tar_0.5": far_at_tar(a_scores, a_same, 0.5),
        "far_at_tar_0.8": far_at_tar(a_scores, a_same, 0.8),
        "open_set": open_set(emb["test_people"], people.labels, scorer),
    }
    for far, t in zip(FARS, thresholds, strict=True):
        key = f"{far:.0e}".replace("e-0", "e-")
        tar_p, far_p = rates_at(p, same, t)
        tar_a, far_a = rates_at(a_scores, a_same, t)
        row[f"held_out_threshold_far_{key}"] = t
        row[f"held_out_tar_far_{key}"] = rates_at(h_scores, h_same, t)[0]
        row[f"devtest_pairs_far_{key}"] = {"tar": tar_p, "far": far_p}
        row[f"all_pairs_far_{key}"] = {"tar": tar_a, "far": far_a}
    return row


def cohort_pools(emb: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Candidate cohorts from the training split: random faces (seeded), all of them, and one
    re-normalised mean template per identity (all identities, and those with 2+ faces)."""
    order = np.random.default_rng(SEED).permutation(len(labels))
    pools = {f"training faces ({n})": emb[order[:n]] for n in COHORT_FACES}
    pools["training faces (all)"] = emb
    ids, counts = np.unique(labels, return_counts=True)
    sums = np.zeros((len(ids), emb.shape[1]), np.float64)
    np.add.at(sums, np.searchsorted(ids, labels), emb)
    templates = (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)
    pools["identity templates"] = templates
    pools["identity templates (2+ faces)"] = templates[counts >= 2]
    return pools


def at_shipped_threshold(emb: dict, data: dict, scoring: Scoring) -> dict:
    """TAR and FAR at the manifest's operating point (its score scale and threshold): on the
    held-out pairs and on every pair of the test people's photos."""
    out = {"threshold": scoring.threshold, "scale": scoring.kind}
    for key in ("held_out", "test_people"):
        e, labels = emb[key], data[key].labels
        tar, far = rates_at(*upper_pairs(scoring.pairwise(e, e), labels), scoring.threshold)
        out[key] = {"tar": tar, "far": far}
    _, ia, ib, same = data["pairs"]
    scores = pair_scores(emb["pairs"], ia, ib, scoring)
    tar, far = rates_at(scores, same, scoring.threshold)
    out["devtest_pairs"] = {"tar": tar, "far": far}
    if scoring.calibration is not None:
        prob = np.array([scoring.confidence_of(v) for v in scores])
        out["confidence_ece"] = reliability(prob, same)[0]
    return out


def choose_cohort(emb_held: np.ndarray, labels: np.ndarray, pools: dict) -> list:
    """[(FAR at TAR 0.8 on the held-out pairs, scorer)] over the grid, best (then smallest)
    first; the first row is plain cosine, for reference."""
    s, same = upper_pairs(emb_held @ emb_held.T, labels)
    out = [(far_at_tar(s, same, 0.8), Cosine())]
    for pool, cohort in pools.items():
        for k in COHORT_KS:
            for variant in VARIANTS:
                scorer = CohortNorm(cohort, pool.split(" (")[0], k, variant)
                s, same = upper_pairs(scorer.matrix(emb_held, emb_held), labels)
                out.append((far_at_tar(s, same, 0.8), scorer))
    return out[:1] + sorted(out[1:], key=lambda r: (r[0], len(r[1].cohort)))


# -- calibration ---------------------------------------------------------------------------
def reliability(prob: np.ndarray, same: np.ndarray, bins: int = 10) -> tuple[float, list]:
    """(expected calibration error, rows of [bin, pairs, mean predicted, observed same])."""
    which = np.minimum((prob * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            pred, obs = float(prob[m].mean()), float(same[m].mean())
            ece += m.mean() * abs(pred - obs)
            rows.append([f"{b / bins:.1f}-{(b + 1) / bins:.1f}", int(m.sum()), pred, obs])
    return float(ece), rows


def isotonic(scores: np.ndarray, same: np.ndarray):
    """Class-balanced isotonic regression (pool adjacent violators) -> predict function."""
    order = np.argsort(scores, kind="stable")
    x, y = scores[order], same[order].astype(np.float64)
    w = np.where(y > 0, 0.5 / y.sum(), 0.5 / (len(y) - y.sum()))
    blocks: list[list[float]] = []  # [weighted mean, weight, last x]
    for xi, yi, wi in zip(x, y, w, strict=True):
        blocks.append([yi, wi, xi])
        while len(blocks) > 1 and blocks[-2][0] >= blocks[-1][0]:
            m2, w2, x2 = blocks.pop()
            m1, w1, _ = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, x2])
    ends = np.array([b[2] for b in blocks])
    values = np.array([b[0] for b in blocks])
    return lambda s: values[np.minimum(np.searchsorted(ends, s), len(values) - 1)]


def calibrate(emb: dict, data: dict, flip: bool, names: list[str]) -> dict:
    held = data["held_out"]
    s, same = all_pairs(emb["held_out"], held.labels)
    s, same = subsample_different(s, same, CALIBRATION_NEGATIVES, SEED)
    fitted_on = (
        f"held-out identities of trainer seed {SEED} ({len(names)} people, "
        f"{len(held.labels)} faces; LFW minus pairsDevTest people + CelebA subset), "
        f"{'flip-fused' if flip else 'single'} int8 embeddings, same and different pairs "
        "weighted equally"
    )
    block = fit_confidence(s, same, fitted_on=fitted_on)
    model = ConfidenceModel(**block)
    _, ia, ib, t_same = data["pairs"]
    t_scores = np.sum(emb["pairs"][ia] * emb["pairs"][ib], axis=1)
    prob = np.array([confidence(v, model) for v in t_scores])
    ece, rows = reliability(prob, t_same)
    iso = isotonic(s, same)(t_scores)
    return {
        "block": block,
        "model": model,
        "ece": ece,
        "brier": float(np.mean((prob - t_same) ** 2)),
        "isotonic_ece": reliability(iso, t_same)[0],
        "isotonic_brier": float(np.mean((iso - t_same) ** 2)),
        "rows": rows,
        "scores": t_scores,
        "same": t_same,
    }


# -- cost ----------------------------------------------------------------------------------
def embed_ms(model: Path, crop: np.ndarray, flip: bool, runs: int = 300) -> float:
    e = Embedder(model, threads=1, flip=flip, exposure=RECOGNITION_EXPOSURE)
    e.embed(crop)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        e.embed(crop)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def cohort_ms(scorer: CohortNorm, probe: np.ndarray, templates: np.ndarray, runs=1000) -> float:
    """One face against a 10-person gallery: its cohort statistics and the normalised scores
    (the templates' statistics are computed once, at enrolment)."""
    mt, st = scorer.stats(templates)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        mp, sp = scorer.stats(probe)
        scorer.normalise(probe @ templates.T, mp[:, None], sp[:, None], mt[None, :], st[None, :])
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


# -- report --------------------------------------------------------------------------------
def report(
    rows: list[dict],
    grid: list,
    cal: dict,
    costs: dict,
    data: dict,
    shipped: str,
    shipped_cohort: str,
) -> str:
    e2, e3 = "1e-2", "1e-3"
    headers = [
        "method",
        "ms/face",
        "10-fold",
        "100-way",
        f"held-out thr FAR {e2}",
        "DevTest pairs TAR / FAR at it",
        f"held-out thr FAR {e3}",
        "DevTest pairs TAR / FAR at it",
        f"all pairs TAR / FAR at thr {e2}",
        f"all pairs TAR / FAR at thr {e3}",
        "all pairs FAR at TAR 0.5",
        "all pairs FAR at TAR 0.8",
        "open set: strangers accepted / wrong names at 70% right",
    ]

    def pair(d: dict, digits: int = 3) -> str:
        return f"{d['tar']:.3f} / {d['far']:.{digits}f}"

    table = [
        [
            r["method"],
            f"{costs[r['method']]:.2f}",
            f"{r['kfold_accuracy']:.3f}",
            f"{r['one_shot_100way']:.3f}",
            f"{r[f'held_out_threshold_far_{e2}']:.4f}",
            pair(r[f"devtest_pairs_far_{e2}"]),
            f"{r[f'held_out_threshold_far_{e3}']:.4f}",
            pair(r[f"devtest_pairs_far_{e3}"]),
            pair(r[f"all_pairs_far_{e2}"], 5),
            pair(r[f"all_pairs_far_{e3}"], 5),
            f"{r['far_at_tar_0.5']:.5f}",
            f"{r['far_at_tar_0.8']:.5f}",
            f"{r['open_set']['stranger_accepted']:.3f} / {r['open_set']['wrong_name']:.3f}",
        ]
        for r in rows
    ]
    held, counts = data["held_out"], rows[0]["all_pairs"]
    o = rows[0]["open_set"]
    grid_rows = [["cosine (no cohort)", "", "", f"{grid[0][0]:.4f}"]] + [
        [s.variant, f"{len(s.cohort)} {s.pool}", s.k, f"{far:.4f}"] for far, s in grid[1:9]
    ]
    lines = [
        f"Model `{data['model']}`, LiteRT, 1 thread. Thresholds at FAR 1e-2 and 1e-3 and every "
        f"choice below are fitted on the held-out identities of `trainer train --seed 0` "
        f"({len(data['held_out_names'])} people, {len(held.labels)} faces, never trained on); "
        "the scores are on `pairsDevTest.txt` people only: its 500 + 500 pairs, all "
        f"{counts['same']:,} same and {counts['different']:,} different pairs of their "
        "photos (up to 10 each: `all pairs`), one-shot 100-way identification (1000 trials) "
        f"and an open-set household (40 people enrolled from 3 photos, {o['visitors']:,} "
        f"visitor and {o['strangers']:,} stranger photos over 20 draws; threshold set per "
        "method so that 70% of visitors get the right name; no margin rule).",
        "",
        markdown_table(headers, table),
        "",
        "`ms/face`: embedding one aligned face (median of 300), plus for cohort rows the "
        "cohort statistics and normalised scores of one face against a 10-person gallery. "
        "Equal recall is the fair comparison: at a fixed cosine threshold flip fusion raises "
        "both TAR and FAR (its scores spread a little), so each row's thresholds are its own, "
        "fitted on the held-out identities.",
        "",
        *verdict(rows, costs, shipped_cohort),
        "",
        "Cohort settings tried on the held-out pairs (best first; FAR at TAR 0.8 there):",
        "",
        markdown_table(["variant", "cohort", "top k", "held-out FAR at TAR 0.8"], grid_rows),
        "",
    ]
    lines += calibration_text(cal, shipped)
    return "\n".join(lines)


def verdict(rows: list[dict], costs: dict, shipped_cohort: str) -> list[str]:
    """What each option buys at equal recall, and what it costs."""
    by = {r["method"]: r for r in rows}
    plain, flip = by["plain"], by["flip"]
    cohort = next(r for r in rows if r["method"].startswith("flip + "))

    def change(key: str, a: dict, b: dict) -> str:
        before, after = (
            r["open_set"]["stranger_accepted"] if key == "open" else r[key] for r in (a, b)
        )
        return f"{before:.4g} -> {after:.4g} ({100 * (after / before - 1):+.0f}%)"

    kib = cohort["cohort_bytes_int8"] / 1024
    return [
        f"Flip fusion, against plain: FAR at TAR 0.8 {change('far_at_tar_0.8', plain, flip)}, "
        f"at TAR 0.5 {change('far_at_tar_0.5', plain, flip)}, strangers accepted "
        f"{change('open', plain, flip)}, 100-way {plain['one_shot_100way']:.3f} -> "
        f"{flip['one_shot_100way']:.3f}; cost +{costs['flip'] - costs['plain']:.2f} ms per face. "
        f"The edge embeds this way by default (`recognition.flip = {str(RECOGNITION_FLIP).lower()}`).",
        "",
        f"Cohort normalisation on top of flip fusion: FAR at TAR 0.8 "
        f"{change('far_at_tar_0.8', flip, cohort)}, at TAR 0.5 "
        f"{change('far_at_tar_0.5', flip, cohort)}, strangers accepted "
        f"{change('open', flip, cohort)}; cost +{costs[cohort['method']] - costs['flip']:.2f} ms "
        f"per face, and a cohort file beside the model (this grid's best: {kib:.0f} KiB as "
        "int8). " + shipped_cohort,
    ]


def shipped_cohort_text(grid: list, record: CohortRecord | None) -> str:
    """The manifest's cohort in words, with its held-out FAR at TAR 0.8 in ``grid`` beside the
    grid's best (the grid's identity templates are built as converter operating-point builds
    them)."""
    if record is None:
        return "The model ships no cohort: the edge scores plain cosine."
    found = [
        far
        for far, scorer in grid[1:]
        if scorer.variant == "mean"
        and scorer.pool == "identity templates"
        and (len(scorer.cohort), scorer.k) == (record.size, record.top_k)
    ]
    where = (
        f"held-out FAR at TAR 0.8 {found[0]:.4f}, the grid's best {grid[1][0]:.4f}"
        if found
        else "a cohort this grid did not try"
    )
    return (
        f"Shipped (`converter operating-point`, the manifest's cohort): {record.built_from}, "
        f"top {record.top_k}, as float16 ({where}), and the threshold set on that scale by a "
        'simulated door (docs/MODEL.md, "Threshold"), since a pair FAR does not carry across '
        "score scales."
    )


def calibration_text(cal: dict, shipped: str) -> list[str]:
    lines = []
    for mode, c in cal.items():
        b = c["block"]
        lines += [
            f"Confidence ({mode} embeddings): logistic a = {b['a']:.3f}, b = {b['b']:.3f}, "
            f"fitted on {b['pairs']['same']:,} same and {b['pairs']['different']:,} different "
            f"held-out pairs. On pairsDevTest: ECE {c['ece']:.3f}, Brier {c['brier']:.4f}; "
            f"isotonic regression on the same pairs: ECE {c['isotonic_ece']:.3f}, Brier "
            f"{c['isotonic_brier']:.4f}.",
            "",
        ]
    lines += [
        f"Reliability of the shipped ({shipped}) confidence on pairsDevTest (10 bins of the "
        "predicted probability):",
        "",
        markdown_table(
            ["predicted", "pairs", "mean predicted", "observed same"], cal[shipped]["rows"]
        ),
    ]
    return lines


def progress(what: str) -> None:
    """One line on stderr per stage: the run takes minutes (more without a face cache)."""
    print(f"bench_test_time: {what}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    model = resolve_model(args.model)
    embedders = {
        m: Embedder(model, threads=1, flip=m == "flip", exposure=RECOGNITION_EXPOSURE)
        for m in ("plain", "flip")
    }
    data = load_data(embedders["plain"].input_size, embedders["plain"].preprocessing)
    data["model"] = model.name
    training = data["training"]
    sets = {
        "held_out": data["held_out"].crops,
        "pairs": data["pairs"][0],
        "test_people": data["test_people"].crops,
        "training": training.crops,
    }
    emb: dict[str, dict[str, np.ndarray]] = {m: {} for m in embedders}
    for m, e in embedders.items():
        for k, v in sets.items():
            progress(f"embedding {len(v)} {k} faces ({m})")
            emb[m][k] = e.embed(v)
    check = one_shot_identification(emb["plain"]["test_people"], data["test_people"].labels, 100)
    rows, grids, cal, costs, shipped = [], {}, {}, {}, {}
    crop = sets["pairs"][:1]
    templates = emb["plain"]["test_people"][:10]
    for mode in ("plain", "flip"):
        progress(f"cohort grid, rows and calibration ({mode})")
        e = emb[mode]
        pools = cohort_pools(e["training"], training.labels)
        grids[mode] = choose_cohort(e["held_out"], data["held_out"].labels, pools)
        cosine_row = evaluate(mode, e, Cosine(), data)
        if mode == "plain":
            # same trials as trainer.evaluate (float rounding may flip a near-tie or two)
            assert abs(cosine_row["one_shot_100way"] - check) <= 0.002, "one-shot protocol drift"
        cohort = grids[mode][1][1]
        cohort_row = evaluate(f"{mode} + {cohort.name}", e, cohort, data)
        cohort_row["cohort_bytes_int8"] = cohort.cohort.shape[0] * cohort.cohort.shape[1]
        rows += [cosine_row, cohort_row]
        costs[mode] = embed_ms(model, crop, mode == "flip")
        costs[cohort_row["method"]] = costs[mode] + cohort_ms(cohort, e["pairs"][:1], templates)
        cal[mode] = calibrate(e, data, mode == "flip", data["held_out_names"])
        shipped[mode] = at_shipped_threshold(e, data, embedders[mode].scoring)
    shipped_mode = "flip" if RECOGNITION_FLIP else "plain"
    other = "plain" if RECOGNITION_FLIP else "flip"
    mismatch = np.array([confidence(v, cal[shipped_mode]["model"]) for v in cal[other]["scores"]])
    mismatch_ece = reliability(mismatch, cal[other]["same"])[0]
    grid = grids[shipped_mode]
    cohort_text = shipped_cohort_text(grid, embedders[shipped_mode].manifest.cohort)
    body = report(rows, grid, cal, costs, data, shipped_mode, cohort_text)
    body += "\n\nAt the manifest's operating point ({}, threshold {:.4f}): ".format(
        shipped["plain"]["scale"], shipped["plain"]["threshold"]
    ) + "; ".join(
        f"{m}: held-out TAR {s['held_out']['tar']:.3f} / FAR {s['held_out']['far']:.4f}, "
        f"all pairs TAR {s['test_people']['tar']:.3f} / FAR {s['test_people']['far']:.5f}, "
        f"pairsDevTest TAR {s['devtest_pairs']['tar']:.3f} / FAR {s['devtest_pairs']['far']:.3f}"
        + (f", confidence ECE {s['confidence_ece']:.3f}" if "confidence_ece" in s else "")
        for m, s in shipped.items()
    )
    body += (
        f"\n\nThe {shipped_mode} calibration applied to {other} scores (recognition.flip set "
        f"against the default): ECE {mismatch_ece:.3f} on pairsDevTest."
    )
    print(body)
    summary = {
        "rows": rows,
        "costs_ms": costs,
        "confidence": {
            m: {k: c[k] for k in ("block", "ece", "brier", "isotonic_ece")} for m, c in cal.items()
        },
        "mismatch_ece": mismatch_ece,
        "shipped_threshold": shipped,
    }
    if not args.no_write:
        write_section("test-time", "Test-time fusion", body)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(summary, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
