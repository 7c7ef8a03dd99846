"""Fit the cosine -> P(same person) map that the edge reports as ``confidence`` (NumPy only).

The model is Platt's: ``P(same | s) = 1 / (1 + exp(-(a * s + b)))``, two numbers that ride in
the model manifest and are applied by :func:`edge.confidence.confidence`. It is fitted on pairs
of identities the encoder never trained on (the trainer's held-out split), never on the pairs
it is scored on.

Trade-offs, stated:

* Class-balanced: same and different pairs each carry half the total weight, so the fit does
  not depend on how many negatives were sampled, and the output is the posterior at even
  prior odds (the LFW pair protocol). A door sees more strangers than Alice: for prior odds
  ``r`` add ``log(r)`` to the logit (see docs/MODEL.md).
* Platt's smoothed targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)`` instead of 1 and 0
  keep the fit finite when the held-out pairs happen to be perfectly separable.
* Logistic is monotone and has two parameters, so it cannot over-fit a few thousand pairs;
  it can be miscalibrated where the score histograms are not logistic-shaped. Its reliability
  on pairsDevTest against isotonic regression is in docs/BENCHMARKS.md ("Test-time fusion").
"""

from __future__ import annotations

import numpy as np

from edge.confidence import KINDS, ConfidenceModel
from edge.scoring import Scoring


def fit_confidence(
    scores: np.ndarray, same: np.ndarray, *, fitted_on: str = "", max_iter: int = 100
) -> dict:
    """The manifest's ``confidence`` block: ``{kind, a, b, fitted_on, pairs}``.

    Weighted logistic regression of ``same`` on ``scores`` by Newton's method with step
    halving (two parameters: converges in about ten steps). ``pairs`` records how many same and
    different pairs it saw. Raises ValueError without both kinds of pair.
    """
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(same, bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and same differ in length ({s.size} vs {y.size})")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("fitting a confidence needs both same and different pairs")
    target = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    weight = np.where(y, 0.5 / n_pos, 0.5 / n_neg)
    x = np.stack([s, np.ones_like(s)], axis=1)
    theta = np.zeros(2)
    loss = _weighted_log_loss(x @ theta, target, weight)
    for _ in range(max_iter):
        p = _sigmoid(x @ theta)
        grad = x.T @ (weight * (p - target))
        hess = (x * (weight * p * (1 - p))[:, None]).T @ x + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-8:
            candidate = theta - t * step
            new_loss = _weighted_log_loss(x @ candidate, target, weight)
            if new_loss <= loss:
                break
            t /= 2
        else:
            break  # no step lowers the loss: at the optimum to float precision
        theta, gain, loss = candidate, loss - new_loss, new_loss
        if gain < 1e-15:
            break
    pairs = {"same": n_pos, "different": n_neg}
    return ConfidenceModel(KINDS[0], float(theta[0]), float(theta[1]), fitted_on, pairs).to_json()


def all_pairs(
    embeddings: np.ndarray, labels: np.ndarray, scoring: Scoring | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(score, same) for every unordered pair of rows: the held-out split's every same pair
    and every different pair. n rows give n(n-1)/2 pairs (3,000 faces: 4.5 M, 36 MB). The
    score is the cosine, or ``scoring``'s (cohort-normalised: :mod:`edge.scoring`)."""
    e = np.asarray(embeddings, np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(e), 1)
    scores = e @ e.T if scoring is None else scoring.pairwise(e, e)
    return scores[i, j], labels[i] == labels[j]


def subsample_different(
    scores: np.ndarray, same: np.ndarray, different: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Every same pair plus at most ``different`` different pairs drawn at random (seeded)."""
    scores, same = np.asarray(scores), np.asarray(same, bool)
    neg = np.flatnonzero(~same)
    if len(neg) > different:
        neg = np.sort(np.random.default_rng(seed).choice(neg, different, replace=False))
    keep = np.concatenate([np.flatnonzero(same), neg])
    return scores[keep], same[keep]


#: different pairs kept from the held-out identities: FAR 1e-3 then rests on ~20 false
#: accepts, and every same pair is kept (there are far fewer of them).
HOLDOUT_DIFFERENT = 20000


def holdout_operating_point(
    embeddings: np.ndarray,
    labels: np.ndarray,
    seed: int = 0,
    *,
    fitted_on: str = "",
    scoring: Scoring | None = None,
) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """The shipped operating point, from identities the encoder never trained on.

    Every same pair and :data:`HOLDOUT_DIFFERENT` distinct different pairs of ``embeddings``
    (computed as the edge computes them, e.g. flip-fused): thresholds and TAR at FAR 1e-2 and
    1e-3 (:func:`trainer.evaluate.holdout_thresholds`) and the ``confidence`` block fitted on
    the same pairs; scores are cosines, or ``scoring``'s. Returns (record, (scores, same)).
    """
    from trainer.evaluate import holdout_thresholds

    scores, same = subsample_different(
        *all_pairs(embeddings, labels, scoring), HOLDOUT_DIFFERENT, seed
    )
    record = holdout_thresholds(scores, same)
    people, faces = len(np.unique(labels)), len(labels)
    record["confidence"] = fit_confidence(
        scores, same, fitted_on=fitted_on or f"held-out identities ({people} people, {faces} faces)"
    )
    return record, (scores, same)


#: The door's operating point: at most this share of strangers' photos gets a name from a
#: household of HOUSEHOLD_MEMBERS people each enrolled from one photo (margin rule applied).
HOUSEHOLD_STRANGER_RATE = 0.01
HOUSEHOLD_MEMBERS = 8
HOUSEHOLD_DRAWS = 300


def household_threshold(
    embeddings: np.ndarray,
    labels: np.ndarray,
    scoring: Scoring,
    *,
    stranger_rate: float = HOUSEHOLD_STRANGER_RATE,
    members: int = HOUSEHOLD_MEMBERS,
    draws: int = HOUSEHOLD_DRAWS,
    margin: float = 0.05,
    seed: int = 0,
    probes: np.ndarray | None = None,
    threshold: float | None = None,
) -> dict:
    """The threshold at which ``stranger_rate`` of strangers' photos are named at a simulated
    door, and how many members' photos get their right name there.

    ``probes``: embeddings of the same photos, row for row, as the door shows them (e.g.
    :func:`trainer.augment.door_probes`): members are enrolled from ``embeddings`` (a good
    phone picture) and visitors and strangers matched from ``probes``. ``threshold``: measure
    the rates at this threshold instead of fitting one.

    Each draw picks ``members`` people with 2+ photos, enrols each from one random photo (the
    gallery a user makes from a phone picture), and matches every other photo of them
    (visitors) and every photo of everyone else (strangers) with the model's ``scoring`` and
    the edge's margin rule. A pair false-accept rate does not transfer between score scales
    here: at the same 1% pair FAR, cohort-normalised scores named 2.8 times as many strangers
    in such households as cosine (docs/MODEL.md, "Threshold"); this asks the question a door
    asks, so different scorings are set to the same risk. Rates are per photo; the daemon's
    multi-frame vote lowers them per visit.
    """
    labels = np.asarray(labels)
    probes = embeddings if probes is None else probes
    if len(probes) != len(embeddings):
        raise ValueError(f"{len(probes)} probes for {len(embeddings)} embeddings")
    v_top, v_right, s_top = _household_draws(
        embeddings, probes, labels, scoring, members, draws, margin, seed
    )
    # the loosest threshold naming at most stranger_rate of them: just above the k-th best
    if threshold is None:
        k = int(np.floor(stranger_rate * len(s_top)))
        threshold = float(np.nextafter(np.sort(s_top)[::-1][k], np.inf))
    named = v_top >= threshold
    return {
        "threshold": threshold,
        "stranger_rate": float(np.mean(s_top >= threshold)),
        "members_named_right": float(np.mean(named & v_right)),
        "members_named_wrong": float(np.mean(named & ~v_right)),
        "members": members,
        "draws": draws,
        "visitor_photos": len(v_top),
        "stranger_photos": len(s_top),
    }


def _household_draws(
    embeddings: np.ndarray,
    probes: np.ndarray,
    labels: np.ndarray,
    scoring: Scoring,
    members: int,
    draws: int,
    margin: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over every draw of :func:`household_threshold`: each visitor photo's best score where
    it clears the runner-up by ``margin`` (else -inf), whether its best match is its owner,
    and each stranger photo's margin-cleared best score."""
    rng = np.random.default_rng(seed)
    per = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    multi = [label for label, rows in per.items() if len(rows) >= 2]
    if len(multi) < members or len(per) <= members:
        raise ValueError(
            f"a household of {members} needs more people ({len(multi)} with 2+ photos)"
        )
    visitor_top, visitor_right, stranger_top = [], [], []
    for _ in range(draws):
        chosen = rng.choice(multi, members, replace=False)
        enrol, visitors, owner = [], [], []
        for k, person in enumerate(chosen):
            rows = rng.permutation(per[person])
            enrol.append(rows[0])
            visitors += rows[1:].tolist()
            owner += [k] * (len(rows) - 1)
        strangers = np.flatnonzero(~np.isin(labels, chosen))
        gallery = embeddings[enrol]
        for rows, tops, right in (
            (visitors, visitor_top, visitor_right),
            (strangers, stranger_top, None),
        ):
            scores = scoring.pairwise(probes[rows], gallery)
            ranked = np.sort(scores, axis=1)
            clear = ranked[:, -1] - ranked[:, -2] >= margin
            tops.append(np.where(clear, ranked[:, -1], -np.inf))
            if right is not None:
                right.append(scores.argmax(axis=1) == np.asarray(owner))
    v_top, v_right, s_top = (np.concatenate(x) for x in (visitor_top, visitor_right, stranger_top))
    return v_top, v_right, s_top


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _weighted_log_loss(z: np.ndarray, target: np.ndarray, weight: np.ndarray) -> float:
    # -[t log p + (1 - t) log(1 - p)] with log p = -log1p(e^-z), written to avoid overflow
    return float(np.sum(weight * (np.logaddexp(0.0, z) - target * z)))
