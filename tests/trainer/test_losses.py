"""Each loss against a plain NumPy loop, over several batch shapes and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer import losses


def _unit(rng, n, d, dtype):
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


def _d2(e):
    return np.array([[np.sum((a - b) ** 2) for b in e] for a in e], np.float64)


def ref_semihard_triplets(y, d):
    """(a, p, n) per positive pair: the closest negative farther than p, else the farthest."""
    n = len(y)
    for a in range(n):
        negs = [j for j in range(n) if y[j] != y[a]]
        if not negs:
            continue
        for p in range(n):
            if p == a or y[p] != y[a]:
                continue
            outside = [j for j in negs if d[a, j] > d[a, p]]
            if outside:
                yield a, p, min(outside, key=lambda j: d[a, j])
            else:
                yield a, p, max(negs, key=lambda j: d[a, j])


def _mean_and_active(vals):
    return (np.mean(vals) if vals else 0.0), (np.mean([v > 0 for v in vals]) if vals else 0.0)


def ref_semihard(y, e, margin):
    d = _d2(e.astype(np.float64))
    vals = [max(d[a, p] - d[a, n] + margin, 0.0) for a, p, n in ref_semihard_triplets(y, d)]
    return _mean_and_active(vals)


def ref_semihard_teacher_margins(y, e, t, margin, margin_max):
    d = _d2(e.astype(np.float64))
    norms = np.linalg.norm(t.astype(np.float64), axis=1)
    dt = _d2(t.astype(np.float64) / np.maximum(norms, 1e-12)[:, None])
    vals = []
    for a, p, n in ref_semihard_triplets(y, d):
        m = margin
        if norms[a] > 0 and norms[p] > 0 and norms[n] > 0:
            m = margin + (margin_max - margin) * min(max((dt[a, n] - dt[a, p]) / 2, 0.0), 1.0)
        vals.append(max(d[a, p] - d[a, n] + m, 0.0))
    return _mean_and_active(vals)


def ref_batch_hard(y, e, margin):
    d = _d2(e.astype(np.float64))
    vals = []
    for a in range(len(y)):
        pos = [d[a, p] for p in range(len(y)) if p != a and y[p] == y[a]]
        neg = [d[a, j] for j in range(len(y)) if y[j] != y[a]]
        if pos and neg:
            vals.append(max(max(pos) - min(neg) + margin, 0.0))
    return (np.mean(vals) if vals else 0.0), (np.mean([v > 0 for v in vals]) if vals else 0.0)


def ref_contrastive(y, e, margin):
    d2 = _d2(e.astype(np.float64))
    pos, neg = [], []
    for i in range(len(y)):
        for j in range(i + 1, len(y)):
            if y[i] == y[j]:
                pos.append(d2[i, j])
            else:
                neg.append(max(margin - np.sqrt(d2[i, j]), 0.0) ** 2)
    return (np.mean(pos) if pos else 0.0) + (np.mean(neg) if neg else 0.0)


def ref_koch(y, e, w, b):
    same, diff = [], []
    for i in range(len(y)):
        for j in range(i + 1, len(y)):
            z = float(np.sum(w * np.abs(e[i] - e[j])) + b)
            p = 1 / (1 + np.exp(-z))
            (same if y[i] == y[j] else diff).append(-np.log(p) if y[i] == y[j] else -np.log(1 - p))
    return (np.mean(same) if same else 0.0) + (np.mean(diff) if diff else 0.0)


CASES = [
    (np.array([0, 0, 1, 1, 2, 2]), 8, np.float32),
    (np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3]), 16, np.float64),
    (np.array([3, 1, 3, 1, 5, 5, 7]), 4, np.float32),
    (np.array([0, 1, 2, 3, 4]), 8, np.float32),  # no positive pair at all
    (np.array([2, 2, 2, 2]), 8, np.float64),  # no negative at all
]


@pytest.mark.parametrize(("labels", "dim", "dtype"), CASES)
def test_triplet_semihard_matches_numpy(labels, dim, dtype):
    e = _unit(np.random.default_rng(len(labels) + dim), len(labels), dim, dtype)
    loss, active = losses.triplet_semihard(
        tf.constant(labels), tf.constant(e), 0.3, return_active=True
    )
    ref_loss, ref_active = ref_semihard(labels, e, 0.3)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    assert loss.dtype == tf.as_dtype(dtype)
    assert np.isfinite(loss.numpy())
    np.testing.assert_allclose(loss.numpy(), ref_loss, atol=tol)
    np.testing.assert_allclose(active.numpy(), ref_active, atol=tol)


@pytest.mark.parametrize(("labels", "dim", "dtype"), CASES)
def test_triplet_teacher_margins_matches_numpy(labels, dim, dtype):
    rng = np.random.default_rng(5 + len(labels) + dim)
    e = _unit(rng, len(labels), dim, dtype)
    t = _unit(rng, len(labels), 6, dtype)
    t[-1] = 0  # the last face has no teacher target: its triplets keep the base margin
    loss, active = losses.triplet_semihard_teacher_margins(
        tf.constant(labels), tf.constant(e), tf.constant(t), 0.2, 0.6, return_active=True
    )
    ref_loss, ref_active = ref_semihard_teacher_margins(labels, e, t, 0.2, 0.6)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    assert np.isfinite(loss.numpy())
    np.testing.assert_allclose(loss.numpy(), ref_loss, atol=tol)
    np.testing.assert_allclose(active.numpy(), ref_active, atol=tol)


def test_teacher_margins_equal_semihard_at_one_margin_and_widen_for_easy_negatives():
    labels = tf.constant(CASES[1][0])
    rng = np.random.default_rng(2)
    e = tf.constant(_unit(rng, 10, 16, np.float32))
    t = tf.constant(_unit(rng, 10, 8, np.float32))
    fixed = losses.triplet_semihard(labels, e, 0.3)
    same = losses.triplet_semihard_teacher_margins(labels, e, t, 0.3, 0.3)
    wider = losses.triplet_semihard_teacher_margins(labels, e, t, 0.3, 0.9)
    np.testing.assert_allclose(same.numpy(), fixed.numpy(), atol=1e-6)
    assert wider.numpy() > fixed.numpy()


@pytest.mark.parametrize(("labels", "dim", "dtype"), CASES)
def test_triplet_batch_hard_matches_numpy(labels, dim, dtype):
    e = _unit(np.random.default_rng(7 + dim), len(labels), dim, dtype)
    loss = losses.triplet_batch_hard(tf.constant(labels), tf.constant(e), 0.2)
    np.testing.assert_allclose(loss.numpy(), ref_batch_hard(labels, e, 0.2)[0], atol=1e-5)


@pytest.mark.parametrize(("labels", "dim", "dtype"), CASES)
def test_contrastive_matches_numpy(labels, dim, dtype):
    e = _unit(np.random.default_rng(3 + dim), len(labels), dim, dtype)
    loss = losses.contrastive(tf.constant(labels), tf.constant(e), 1.2)
    assert np.isfinite(loss.numpy())
    np.testing.assert_allclose(loss.numpy(), ref_contrastive(labels, e, 1.2), atol=1e-5)


@pytest.mark.parametrize(("labels", "dim", "dtype"), CASES)
def test_koch_matches_numpy(labels, dim, dtype):
    rng = np.random.default_rng(11 + dim)
    e = _unit(rng, len(labels), dim, dtype)
    w = rng.normal(size=dim).astype(dtype)
    loss = losses.koch_bce(
        tf.constant(labels), tf.constant(e), tf.constant(w), tf.constant(0.4, dtype)
    )
    assert np.isfinite(loss.numpy())
    np.testing.assert_allclose(loss.numpy(), ref_koch(labels, e, w, 0.4), atol=1e-5)


def test_semihard_gradient_is_finite_for_identical_embeddings():
    e = tf.Variable(np.tile(np.eye(4, dtype=np.float32)[:1], (6, 1)))
    y = tf.constant([0, 0, 1, 1, 2, 2])
    with tf.GradientTape() as tape:
        loss = losses.triplet_semihard(y, e) + losses.contrastive(y, e)
    grad = tape.gradient(loss, e)
    assert np.all(np.isfinite(grad.numpy()))
    np.testing.assert_allclose(
        loss.numpy(), 0.2 + 1.0, atol=1e-5
    )  # margin, plus margin^2 of negatives


def test_cosine_distillation_ignores_rows_without_target():
    s = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    t = np.array([[1, 0], [1, 0], [0, 0]], np.float32)
    # row 0: cos 1 -> 0; row 1: cos 0 -> 1; row 2 has no target
    np.testing.assert_allclose(
        losses.cosine_distillation(tf.constant(s), tf.constant(t)).numpy(), 0.5, atol=1e-6
    )


def ref_relational(s, t):
    """Plain loop: mean over ordered pairs i != j, both with a teacher, of (cos_s - cos_t)^2."""
    vals = []
    for i in range(len(s)):
        for j in range(len(s)):
            if i == j or not np.any(t[i]) or not np.any(t[j]):
                continue
            cs = s[i] @ s[j] / np.linalg.norm(s[i]) / np.linalg.norm(s[j])
            ct = t[i] @ t[j] / np.linalg.norm(t[i]) / np.linalg.norm(t[j])
            vals.append((cs - ct) ** 2)
    return np.mean(vals)


@pytest.mark.parametrize("n", [3, 9])
def test_relational_distillation_matches_numpy(n):
    rng = np.random.default_rng(n)
    s = rng.normal(size=(n, 6)) * 3.0  # not unit: the loss normalises
    t = rng.normal(size=(n, 6))
    t[1] = 0.0  # a face without a teacher target
    got = losses.relational_distillation(tf.constant(s), tf.constant(t)).numpy()
    np.testing.assert_allclose(got, ref_relational(s, t), rtol=1e-6)


def test_relational_distillation_ignores_rotation():
    rng = np.random.default_rng(0)
    t = _unit(rng, 8, 5, np.float64)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))  # any rotation keeps every cosine
    loss = losses.relational_distillation(tf.constant(t @ q), tf.constant(t)).numpy()
    assert loss < 1e-12
    assert losses.cosine_distillation(tf.constant(t @ q), tf.constant(t)).numpy() > 0.1


def test_margin_softmax_matches_numpy_cosface():
    rng = np.random.default_rng(0)
    e = _unit(rng, 5, 8, np.float64)
    w = _unit(rng, 3, 8, np.float64)
    y = np.array([0, 2, 1, 1, 0])
    got = losses.margin_softmax(
        tf.constant(y), tf.constant(e), tf.constant(w), scale=10.0, margin=0.3
    ).numpy()
    ref = []
    for i in range(5):
        z = 10.0 * (w @ e[i])
        z[y[i]] -= 10.0 * 0.3
        ref.append(-z[y[i]] + np.log(np.sum(np.exp(z))))
    np.testing.assert_allclose(got, np.mean(ref), atol=1e-8)


def test_margin_softmax_matches_numpy_arcface():
    rng = np.random.default_rng(1)
    e = _unit(rng, 6, 8, np.float64)
    w = _unit(rng, 4, 8, np.float64)
    y = np.array([0, 3, 1, -1, 2, 0])  # -1: a one-image person without a class centre
    got = losses.margin_softmax(
        tf.constant(y), tf.constant(e), tf.constant(w), kind="arcface", scale=16.0, margin=0.5
    ).numpy()
    ref = []
    for i in range(len(y)):
        if y[i] < 0:
            continue
        cos = w @ e[i]
        z = 16.0 * cos
        z[y[i]] = 16.0 * np.cos(np.arccos(cos[y[i]]) + 0.5)
        ref.append(-z[y[i]] + np.log(np.sum(np.exp(z))))
    np.testing.assert_allclose(got, np.mean(ref), atol=1e-6)


@pytest.mark.parametrize(("labels", "dim", "dtype"), CASES)
def test_batch_hard_active_fraction_matches_numpy(labels, dim, dtype):
    e = _unit(np.random.default_rng(5 + dim), len(labels), dim, dtype)
    _, active = losses.triplet_batch_hard(
        tf.constant(labels), tf.constant(e), 0.5, return_active=True
    )
    assert np.isfinite(active.numpy())
    np.testing.assert_allclose(active.numpy(), ref_batch_hard(labels, e, 0.5)[1], atol=1e-6)
