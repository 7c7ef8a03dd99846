"""Metric-learning losses over a batch of L2-normalised embeddings and integer identity labels.

All distances are squared Euclidean between unit vectors, ``d = 2 - 2 cos``, so margins are on
a 0..4 scale. Every function works in the embeddings' dtype (float16/32/64) and returns a finite
scalar even for batches without any positive pair (then the loss is 0). Each one is tested
against a plain NumPy loop in tests/trainer/test_losses.py.

* :func:`triplet_semihard` (default): for every positive pair (a, p) the closest negative that
  is still farther than p (FaceNet); when none is, the farthest negative inside the margin
  zone. Stable from a random start; batch-hard alone stalled in our runs (every triplet active).
* :func:`triplet_batch_hard`: hardest positive and hardest negative per anchor (Hermans et al.).
* :func:`contrastive`: Hadsell et al., pulls positives to 0 and pushes negatives past a margin.
* :func:`koch_bce`: Koch et al.'s Siamese head, sigmoid(w . |a - b| + b0) with binary
  cross-entropy, balanced between same and different pairs.
* :func:`triplet_semihard_teacher_margins`: semi-hard triplets whose margin the teacher sets per
  triplet (triplet distillation, Feng et al. 2019): wide where the teacher sees the negative far
  beyond the positive, narrow for look-alikes the teacher itself can barely tell apart.
* :func:`cosine_distillation`: 1 - cos(student, teacher) for faces that have a teacher target.
* :func:`margin_softmax`: CosFace / ArcFace over class centres (train-time only head).
"""

from __future__ import annotations

import tensorflow as tf


def pairwise_sq_distances(emb: tf.Tensor) -> tf.Tensor:
    """(N, N) squared Euclidean distances, clipped at 0 (round-off)."""
    sq = tf.reduce_sum(tf.square(emb), axis=1)
    d = sq[:, None] - 2.0 * tf.matmul(emb, emb, transpose_b=True) + sq[None, :]
    return tf.maximum(d, tf.zeros_like(d))


def _masks(labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    labels = tf.reshape(labels, [-1])
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    positive = tf.logical_and(same, tf.logical_not(eye))
    negative = tf.logical_not(same)
    return positive, negative


def _safe_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    m = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * m) / tf.maximum(tf.reduce_sum(m), tf.ones([], values.dtype))


def triplet_semihard(
    labels: tf.Tensor, emb: tf.Tensor, margin: float = 0.2, *, return_active: bool = False
):
    """Semi-hard triplet loss; optionally also the fraction of positive pairs with loss > 0."""
    d = pairwise_sq_distances(emb)
    positive, negative = _masks(labels)
    chosen = tf.gather(d, _semihard_negatives(d, negative), batch_dims=1)  # d[a, n(a, p)]
    losses = tf.nn.relu(d - chosen + tf.cast(margin, emb.dtype))
    mask = tf.logical_and(positive, tf.reduce_any(negative, axis=1)[:, None])
    loss = _safe_mean(losses, mask)
    if return_active:
        return loss, _safe_mean(tf.cast(losses > 0, emb.dtype), mask)
    return loss


def _semihard_negatives(d: tf.Tensor, negative: tf.Tensor) -> tf.Tensor:
    """For every (anchor a, positive p), the index of the negative semi-hard mining picks: the
    closest negative farther from a than p is, or, when none is, the farthest negative.
    Rows of an anchor without negatives get an arbitrary index (callers mask them out)."""
    big = tf.reduce_max(d) + 1.0
    d_ap = d[:, :, None]  # (a, p, 1)
    d_an = d[:, None, :]  # (a, 1, n)
    neg = negative[:, None, :]
    outside = tf.logical_and(neg, d_an > d_ap)  # semi-hard candidates, per (a, p)
    closest_outside = tf.argmin(tf.where(outside, d_an, big), axis=2, output_type=tf.int32)
    farthest_inside = tf.argmax(tf.where(neg, d_an, -big), axis=2, output_type=tf.int32)
    return tf.where(tf.reduce_any(outside, axis=2), closest_outside, farthest_inside)


def triplet_semihard_teacher_margins(
    labels: tf.Tensor,
    emb: tf.Tensor,
    teacher: tf.Tensor,
    margin: float = 0.2,
    margin_max: float = 0.5,
    *,
    return_active: bool = False,
):
    """Semi-hard triplets (the negative chosen exactly as :func:`triplet_semihard` does) with a
    margin per triplet set by the teacher's squared distances ``t``:

        m(a, p, n) = margin + (margin_max - margin) * clip((t_an - t_ap) / 2, 0, 1)

    A fixed margin asks the student to push every negative equally far, look-alikes included,
    which a small student cannot do without bending its space; the teacher's gap says how far
    apart the pair can reasonably be. Triplets where a, p or n has no teacher vector (a zero
    row) keep ``margin``. With ``margin_max == margin`` this is :func:`triplet_semihard`.
    """
    d = pairwise_sq_distances(emb)
    positive, negative = _masks(labels)
    chosen_n = _semihard_negatives(d, negative)
    chosen = tf.gather(d, chosen_n, batch_dims=1)  # d[a, chosen_n[a, p]]

    teacher = tf.cast(teacher, emb.dtype)
    t_norm = tf.norm(teacher, axis=-1)
    t = pairwise_sq_distances(teacher / tf.maximum(t_norm, tf.cast(1e-12, emb.dtype))[:, None])
    gap = tf.gather(t, chosen_n, batch_dims=1) - t  # t[a, n] - t[a, p]
    has = t_norm > 0
    taught = tf.logical_and(tf.logical_and(has[:, None], has[None, :]), tf.gather(has, chosen_n))
    scale = tf.clip_by_value(gap / 2.0, 0.0, 1.0)
    margins = tf.cast(margin, emb.dtype) + tf.cast(margin_max - margin, emb.dtype) * scale
    margins = tf.where(taught, margins, tf.cast(margin, emb.dtype))

    losses = tf.nn.relu(d - chosen + margins)
    mask = tf.logical_and(positive, tf.reduce_any(negative, axis=1)[:, None])
    loss = _safe_mean(losses, mask)
    if return_active:
        return loss, _safe_mean(tf.cast(losses > 0, emb.dtype), mask)
    return loss


def triplet_batch_hard(
    labels: tf.Tensor, emb: tf.Tensor, margin: float = 0.2, *, return_active: bool = False
):
    """Batch-hard triplet loss over anchors that have a positive and a negative."""
    d = pairwise_sq_distances(emb)
    positive, negative = _masks(labels)
    big = tf.reduce_max(d) + 1.0
    hardest_pos = tf.reduce_max(tf.where(positive, d, tf.zeros_like(d)), axis=1)
    hardest_neg = tf.reduce_min(tf.where(negative, d, big + tf.zeros_like(d)), axis=1)
    valid = tf.logical_and(tf.reduce_any(positive, 1), tf.reduce_any(negative, 1))
    losses = tf.nn.relu(hardest_pos - hardest_neg + tf.cast(margin, emb.dtype))
    loss = _safe_mean(losses, valid)
    if return_active:
        return loss, _safe_mean(tf.cast(losses > 0, emb.dtype), valid)
    return loss


def contrastive(labels: tf.Tensor, emb: tf.Tensor, margin: float = 1.0) -> tf.Tensor:
    """Contrastive loss over all pairs i < j: same d^2, different relu(margin - d)^2, d Euclidean.

    The two terms are averaged separately and added, so a batch with few positives still
    pulls them together.
    """
    d2 = pairwise_sq_distances(emb)
    positive, negative = _masks(labels)
    upper = tf.cast(tf.linalg.band_part(tf.ones_like(d2), 0, -1), tf.bool)
    upper = tf.logical_and(upper, tf.logical_not(tf.eye(tf.shape(d2)[0], dtype=tf.bool)))
    d = tf.sqrt(d2 + tf.cast(1e-12, emb.dtype))
    pos_loss = _safe_mean(d2, tf.logical_and(positive, upper))
    neg_loss = _safe_mean(
        tf.square(tf.nn.relu(tf.cast(margin, emb.dtype) - d)), tf.logical_and(negative, upper)
    )
    return pos_loss + neg_loss


def koch_bce(labels: tf.Tensor, emb: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """Koch et al. (2015) Siamese head: p(same) = sigmoid(sum_k w_k |a_k - b_k| + bias).

    Binary cross-entropy over all pairs i < j, mean over same pairs plus mean over different
    pairs (balanced, P x K batches hold far more different pairs).
    """
    weights = tf.cast(tf.reshape(weights, [-1]), emb.dtype)
    bias = tf.cast(tf.reshape(bias, []), emb.dtype)
    l1 = tf.abs(emb[:, None, :] - emb[None, :, :])
    logits = tf.reduce_sum(l1 * weights, axis=-1) + bias
    positive, negative = _masks(labels)
    upper = tf.cast(tf.linalg.band_part(tf.ones_like(logits), 0, -1), tf.bool)
    upper = tf.logical_and(upper, tf.logical_not(tf.eye(tf.shape(logits)[0], dtype=tf.bool)))
    bce_same = tf.nn.softplus(-logits)  # -log sigmoid(z)
    bce_diff = tf.nn.softplus(logits)  # -log(1 - sigmoid(z))
    return _safe_mean(bce_same, tf.logical_and(positive, upper)) + _safe_mean(
        bce_diff, tf.logical_and(negative, upper)
    )


def cosine_distillation(student: tf.Tensor, teacher: tf.Tensor) -> tf.Tensor:
    """Mean of 1 - cos(student, teacher) over rows whose teacher vector is non-zero."""
    teacher = tf.cast(teacher, student.dtype)
    s = tf.math.l2_normalize(student, axis=-1)
    t_norm = tf.norm(teacher, axis=-1)
    t = teacher / tf.maximum(t_norm, tf.cast(1e-12, student.dtype))[:, None]
    cos = tf.reduce_sum(s * t, axis=-1)
    return _safe_mean(1.0 - cos, t_norm > 0)


def relational_distillation(student: tf.Tensor, teacher: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of the batch's pairwise cosine similarities, student vs teacher,
    over pairs of distinct rows that both have a teacher vector (relational distillation,
    Park et al. 2019, with the cosine as the relation).

    Where :func:`cosine_distillation` asks each student vector to point where the teacher's
    does, this asks only that the student's *geometry* match: who is close to whom. It
    constrains the 128 x 128 similarity structure the verification threshold works on, and
    leaves the student free to rotate its space.
    """
    teacher = tf.cast(teacher, student.dtype)
    s = tf.math.l2_normalize(student, axis=-1)
    t_norm = tf.norm(teacher, axis=-1)
    t = teacher / tf.maximum(t_norm, tf.cast(1e-12, student.dtype))[:, None]
    diff = tf.square(tf.matmul(s, s, transpose_b=True) - tf.matmul(t, t, transpose_b=True))
    has = tf.cast(t_norm > 0, student.dtype)
    n = tf.shape(student)[0]
    mask = has[:, None] * has[None, :] * (1.0 - tf.eye(n, dtype=student.dtype))
    return tf.reduce_sum(diff * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def margin_softmax(
    labels: tf.Tensor,
    emb: tf.Tensor,
    centres: tf.Tensor,
    *,
    kind: str = "cosface",
    scale: float = 30.0,
    margin: float = 0.35,
) -> tf.Tensor:
    """CosFace (cos - m) or ArcFace (cos(theta + m)) softmax over unit class centres.

    ``labels`` index rows of ``centres`` (C, D); rows with label < 0 (no class) are ignored.
    """
    labels = tf.reshape(labels, [-1])
    w = tf.math.l2_normalize(tf.cast(centres, emb.dtype), axis=1)
    cos = tf.matmul(tf.math.l2_normalize(emb, axis=1), w, transpose_b=True)
    valid = labels >= 0
    onehot = tf.one_hot(tf.maximum(labels, 0), tf.shape(w)[0], dtype=emb.dtype)
    if kind == "arcface":
        theta = tf.acos(tf.clip_by_value(cos, -1.0 + 1e-6, 1.0 - 1e-6))
        target = tf.cos(theta + margin)
    else:
        target = cos - margin
    logits = scale * (onehot * target + (1.0 - onehot) * cos)
    ce = tf.nn.softmax_cross_entropy_with_logits(onehot, logits)
    return _safe_mean(ce, valid)
