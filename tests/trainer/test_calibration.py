"""trainer.calibration: the logistic confidence fit against closed-form answers."""

import numpy as np
import pytest

from trainer.calibration import all_pairs, fit_confidence, subsample_different


def gaussian_scores(n_same, n_diff, mu_same=0.6, mu_diff=0.05, sd=0.15, seed=0):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(mu_same, sd, n_same), rng.normal(mu_diff, sd, n_diff)])
    same = np.r_[np.ones(n_same, bool), np.zeros(n_diff, bool)]
    return scores, same


def test_recovers_the_exact_posterior_of_equal_variance_gaussians():
    # Two normals with a shared sd: at even odds the posterior is exactly logistic, with
    # a = (mu1 - mu0) / sd^2 and b = (mu0^2 - mu1^2) / (2 sd^2).
    mu1, mu0, sd = 0.6, 0.05, 0.15
    scores, same = gaussian_scores(200_000, 200_000, mu1, mu0, sd)
    block = fit_confidence(scores, same, fitted_on="synthetic")
    assert block["a"] == pytest.approx((mu1 - mu0) / sd**2, rel=0.02)
    assert block["b"] == pytest.approx((mu0**2 - mu1**2) / (2 * sd**2), rel=0.02)
    assert block["kind"] == "logistic" and block["fitted_on"] == "synthetic"
    assert block["pairs"] == {"same": 200_000, "different": 200_000}


def test_class_balance_makes_the_fit_independent_of_how_many_negatives():
    balanced = fit_confidence(*gaussian_scores(20_000, 20_000, seed=1))
    skewed = fit_confidence(*gaussian_scores(20_000, 200_000, seed=2))
    assert skewed["a"] == pytest.approx(balanced["a"], rel=0.05)
    assert skewed["b"] == pytest.approx(balanced["b"], rel=0.05)


def test_fit_solves_the_weighted_score_equations():
    # The optimum of the class-balanced log loss with Platt's targets: the gradient, computed
    # here in plain NumPy, is zero in both parameters.
    scores, same = gaussian_scores(300, 3000, sd=0.2, seed=3)
    block = fit_confidence(scores, same)
    n_pos, n_neg = same.sum(), (~same).sum()
    target = np.where(same, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    weight = np.where(same, 0.5 / n_pos, 0.5 / n_neg)
    p = 1 / (1 + np.exp(-(block["a"] * scores + block["b"])))
    residual = weight * (p - target)
    assert abs(residual.sum()) < 1e-9 and abs((residual * scores).sum()) < 1e-9


def test_separable_pairs_give_a_finite_fit_that_steepens_with_evidence():
    def separable(n):
        scores = np.r_[np.linspace(0.1, 0.3, n), np.linspace(0.7, 0.9, n)]
        return fit_confidence(scores, np.r_[np.zeros(n, bool), np.ones(n, bool)])

    few, many = separable(3), separable(300)
    for block in (few, many):
        assert np.isfinite(block["a"]) and block["a"] > 0
        assert -block["b"] / block["a"] == pytest.approx(0.5, abs=1e-6)  # P = 0.5 in the gap
    assert many["a"] > 2 * few["a"]  # Platt's targets move towards 0 and 1 with more pairs


@pytest.mark.parametrize(
    ("scores", "same", "message"),
    [
        ([0.1, 0.2], [True, True], "both same and different"),
        ([0.1, 0.2, 0.3], [True, False], "differ in length"),
        ([0.1, np.nan], [True, False], "finite"),
    ],
)
def test_bad_input_is_a_clear_error(scores, same, message):
    with pytest.raises(ValueError, match=message):
        fit_confidence(np.array(scores), np.array(same))


def test_all_pairs_lists_every_unordered_pair_once():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(7, 4))
    labels = np.array([0, 0, 1, 1, 1, 2, 3])
    scores, same = all_pairs(emb, labels)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    expected = [
        (unit[i] @ unit[j], labels[i] == labels[j]) for i in range(7) for j in range(i + 1, 7)
    ]
    np.testing.assert_allclose(scores, [s for s, _ in expected], atol=1e-6)
    assert same.tolist() == [y for _, y in expected]  # 1 + 3 same pairs of 21


def test_subsample_keeps_every_same_pair():
    scores, same = gaussian_scores(50, 1000)
    s, y = subsample_different(scores, same, 200, seed=0)
    assert y.sum() == 50 and (~y).sum() == 200
    assert set(s[y]) == set(scores[same]) and set(s[~y]) <= set(scores[~same])
    assert len(subsample_different(scores, same, 5000)[0]) == len(scores)  # fewer: all kept


def test_household_threshold_names_at_most_the_stranger_rate():
    """Synthetic people (tight clusters around random centres): the door threshold lets
    through at most the asked share of strangers' photos, checked by counting them again
    with plain loops, and names most members right."""
    from edge.scoring import Scoring
    from trainer.calibration import household_threshold

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 16))
    labels = np.repeat(np.arange(30), 4)
    e = centres[labels] + 0.6 * rng.normal(size=(120, 16))
    e = (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)
    point = household_threshold(e, labels, Scoring(0.0), stranger_rate=0.05, members=5, draws=20)
    assert 0.0 < point["stranger_rate"] <= 0.05
    assert point["members_named_right"] > 0.5 > point["members_named_wrong"]
    # the same draws again, by hand: strangers' best score, margin rule, against the threshold
    rng = np.random.default_rng(0)
    per = {lab: np.flatnonzero(labels == lab) for lab in range(30)}
    named = total = 0
    for _ in range(20):
        chosen = rng.choice(list(per), 5, replace=False)
        enrol = []
        for person in chosen:
            enrol.append(rng.permutation(per[person])[0])
        for row in np.flatnonzero(~np.isin(labels, chosen)):
            s = sorted(float(e[row] @ e[g]) for g in enrol)
            named += s[-1] - s[-2] >= 0.05 and s[-1] >= point["threshold"]
            total += 1
    assert total == point["stranger_photos"] and named / total == point["stranger_rate"]


def test_household_door_probes_and_a_given_threshold():
    """Visitors and strangers come from ``probes`` (enrolment from the embeddings): the same
    embeddings give the same point, noisier probes name fewer members at the same threshold."""
    from edge.scoring import Scoring
    from trainer.calibration import household_threshold

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 16))
    labels = np.repeat(np.arange(30), 4)

    def unit(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    e = unit(centres[labels] + 0.6 * rng.normal(size=(120, 16)))
    kw = dict(stranger_rate=0.05, members=5, draws=20)
    clean = household_threshold(e, labels, Scoring(0.0), **kw)
    assert household_threshold(e, labels, Scoring(0.0), probes=e, **kw) == clean
    noisy = unit(e + 0.8 * rng.normal(size=e.shape))
    door = household_threshold(
        e, labels, Scoring(0.0), probes=noisy, threshold=clean["threshold"], **kw
    )
    assert door["threshold"] == clean["threshold"]
    assert door["members_named_right"] < clean["members_named_right"]
    with pytest.raises(ValueError, match="3 probes for 120 embeddings"):
        household_threshold(e, labels, Scoring(0.0), probes=e[:3], **kw)
