"""Evaluation maths on hand-made scores with known answers."""

from __future__ import annotations

import os

import numpy as np
import pytest

from trainer.errors import DataError
from trainer.evaluate import (
    best_threshold,
    eer,
    kfold_accuracy,
    one_shot_from_scores,
    one_shot_identification,
    read_pairs,
    roc_auc,
    tar_at_far,
    verification_metrics,
)


def test_perfect_separation():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4] * 5)
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 5, bool)
    m = verification_metrics(scores, same)
    assert m["auc"] == pytest.approx(1.0)
    assert m["eer"] == pytest.approx(0.0)
    assert m["kfold_accuracy"] == pytest.approx(1.0)
    assert 0.4 < m["best_threshold"] < 0.6
    assert m["tar_at_far_1e-3"] == pytest.approx(1.0)


def test_auc_counts_ordered_pairs():
    # same: 0.8, 0.4; different: 0.6, 0.2 -> of 4 (same, diff) pairs, 3 ordered right: AUC 0.75
    scores = np.array([0.8, 0.4, 0.6, 0.2])
    same = np.array([1, 1, 0, 0], bool)
    assert roc_auc(scores, same) == pytest.approx(0.75)
    # ties count half: same 0.5 vs diff 0.5
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0], bool)) == pytest.approx(0.5)


def test_eer_known_value():
    # same: 0.9, 0.8, 0.3, 0.7 ; diff: 0.1, 0.2, 0.85, 0.4 -> one error of each kind at t=0.5
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.1, 0.2, 0.85, 0.4])
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    assert eer(scores, same) == pytest.approx(0.25)
    assert tar_at_far(scores, same, 0.0) == pytest.approx(0.25)  # above 0.85 only 0.9
    assert tar_at_far(scores, same, 0.25) == pytest.approx(0.75)


def test_best_threshold_maximises_accuracy():
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.35])
    same = np.array([0, 0, 0, 1, 1, 1], bool)
    t = best_threshold(scores, same)
    assert 0.3 < t <= 0.35
    assert np.mean((scores >= t) == same) == 1.0


def test_kfold_threshold_is_chosen_on_other_folds():
    # 20 pairs; one fold's scores are shifted so its own best threshold differs from the rest
    rng = np.random.default_rng(0)
    same = np.tile([True, False], 50)
    scores = np.where(same, 0.7, 0.3) + rng.normal(0, 0.01, 100)
    acc, std, thresholds = kfold_accuracy(scores, same, 10)
    assert acc == 1.0 and std == 0.0 and len(thresholds) == 10
    assert all(0.3 < t < 0.7 for t in thresholds)
    # flip one pair: at most one fold loses one of its 10 pairs
    scores[0] = 0.2
    acc, _, _ = kfold_accuracy(scores, same, 10)
    assert acc == pytest.approx(0.99)


def test_one_shot_identification_perfect_and_chance():
    labels = np.repeat(np.arange(20), 3)
    perfect = np.eye(20)[labels] + np.random.default_rng(0).normal(0, 0.01, (60, 20))
    assert one_shot_identification(perfect, labels, n_way=5, trials=200) == 1.0
    noise = np.random.default_rng(1).normal(size=(60, 32))
    acc = one_shot_identification(noise, labels, n_way=5, trials=2000, seed=3)
    assert 0.12 < acc < 0.28  # chance is 1/5


def test_one_shot_from_scores_is_the_cosine_protocol_over_any_matrix():
    labels = np.repeat(np.arange(20), 3)
    emb = np.random.default_rng(4).normal(size=(60, 8)) + 2 * np.eye(20, 8)[labels % 8]
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    plain = one_shot_identification(emb, labels, n_way=5, trials=300, seed=2)
    assert one_shot_from_scores(unit @ unit.T, labels, 5, 300, seed=2) == plain
    # a per-face offset (as cohort normalisation subtracts) can change the ranking
    offsets = np.where(labels == labels[0], 5.0, 0.0)
    shifted = unit @ unit.T - offsets[None, :]
    assert one_shot_from_scores(shifted, labels, 5, 300, seed=2) != plain


def test_read_pairs_view1_and_errors(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("2\nAnn 1 3\nBen 2 Cal 10\n")
    pairs = read_pairs(f, "/data")
    assert len(pairs) == 2 and pairs[0][2] is True
    assert str(pairs[0][0]).endswith("Ann/Ann_0001.jpg") and str(pairs[0][1]).endswith(
        "Ann/Ann_0003.jpg"
    )
    assert str(pairs[1][1]).endswith("Cal/Cal_0010.jpg") and pairs[1][2] is False
    (tmp_path / "bad.txt").write_text("Ann 1 3\n")
    with pytest.raises(DataError, match="first line must be a count"):
        read_pairs(tmp_path / "bad.txt", "/data")
    with pytest.raises(DataError, match=r"nope\.txt: no such file \(pairs file expected\)"):
        read_pairs(tmp_path / "nope.txt", "/data")


def test_threshold_at_far_is_the_loosest_with_far_at_most_the_target():
    from trainer.evaluate import threshold_at_far

    same = np.array([True] * 4 + [False] * 10)
    same_scores, different_scores = (
        [0.9, 0.8, 0.7, 0.2],
        [0.75, 0.6, 0.5, 0.4, 0.3, 0.1, 0.0, -0.1, -0.2, -0.3],
    )
    scores = np.array([*same_scores, *different_scores])
    assert threshold_at_far(scores, same, 0.0) == 0.8  # the different pair at 0.75 stays out
    assert threshold_at_far(scores, same, 0.1) == 0.7  # one of ten different pairs (0.75) in
    assert threshold_at_far(scores, same, 0.2) == 0.6  # two: 0.75 and 0.6
    far = np.mean(scores[~same] >= threshold_at_far(scores, same, 0.1))
    assert far <= 0.1


def test_one_shot_identification_euclidean_ranks_by_distance():
    """Two tight clusters far apart but with very different norms: Euclidean and cosine agree
    here, while a probe nearer in angle than in distance separates them."""
    emb = np.array([[1.0, 0.0], [1.1, 0.0], [0.0, 5.0], [0.0, 5.2]])
    labels = np.array(["a", "a", "b", "b"])
    assert one_shot_identification(emb, labels, n_way=2, trials=50, metric="euclidean") == 1.0
    assert one_shot_identification(emb, labels, n_way=2, trials=50, metric="cosine") == 1.0
    tricky = np.array([[1.0, 0.1], [10.0, 0.0], [1.0, 0.2], [0.0, 1.0]])
    lab = np.array(["a", "a", "b", "b"])
    # probe a0=(1,0.1): cosine says a1 (same direction), Euclidean says b0 (closer)
    cos = one_shot_identification(tricky, lab, n_way=2, trials=200, metric="cosine")
    euc = one_shot_identification(tricky, lab, n_way=2, trials=200, metric="euclidean")
    assert cos != euc


def test_read_pairs_refuses_fifos_directories_and_binary(tmp_path):
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="fifo.txt: not a regular file"):
        read_pairs(fifo, "/data")  # would block forever if opened
    with pytest.raises(DataError, match="not a regular file"):
        read_pairs(tmp_path, "/data")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x81bin")
    with pytest.raises(DataError, match="bin.txt: not an LFW pairs file"):
        read_pairs(tmp_path / "bin.txt", "/data")


def test_exclude_pairs_people_fail_exactly_as_evaluate_does(tmp_path):
    from trainer.data import pair_file_people

    (tmp_path / "junk.txt").write_text("1\nAnn x y\n")
    with pytest.raises(DataError, match=r"junk.txt:2: expected") as a:
        pair_file_people(tmp_path / "junk.txt")
    with pytest.raises(DataError) as b:
        read_pairs(tmp_path / "junk.txt", "/data")
    assert str(a.value) == str(b.value)
