"""Teacher targets: centring, the cache key, and a clear message without dlib (no dlib needed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from trainer.errors import TrainingError
from trainer.teacher import _key, centre, teacher_cache_path, teacher_embeddings


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_centre_removes_the_shared_component():
    """Unit vectors sharing a big common direction (dlib: cosine ~0.83 between strangers)
    become nearly orthogonal once centred; rows without a target stay zero."""
    rng = np.random.default_rng(0)
    common = np.zeros(128, np.float32)
    common[0] = 4.0
    raw = _unit(common + rng.normal(0, 1, (200, 128)).astype(np.float32) * 0.15)
    raw[5] = 0.0  # a face the teacher never embedded
    valid = np.ones(200, bool)
    valid[5] = False
    cos_raw = (raw[valid] @ raw[valid].T)[np.triu_indices(199, 1)].mean()
    out, mean = centre(raw)
    cos_centred = (out[valid] @ out[valid].T)[np.triu_indices(199, 1)].mean()
    assert cos_raw > 0.8 and abs(cos_centred) < 0.05
    np.testing.assert_allclose(mean, raw[valid].mean(0), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out[valid], axis=1), 1.0, atol=1e-5)
    assert not out[5].any()
    # validation or new faces are centred with the TRAINING mean, not their own
    again, same_mean = centre(raw[:10], mean)
    np.testing.assert_array_equal(same_mean, mean)
    np.testing.assert_allclose(again, out[:10], atol=1e-6)


def test_centre_with_no_target_at_all():
    out, mean = centre(np.zeros((3, 128), np.float32))
    assert not out.any() and not mean.any()


def _images(tmp_path, n=3):
    paths = []
    for i in range(n):
        p = tmp_path / "root" / f"person{i}" / "a.jpg"
        p.parent.mkdir(parents=True)
        p.write_bytes(b"not decoded in these tests")
        paths.append(str(p))
    return paths


def test_cached_targets_are_reused_and_keyed_by_box(tmp_path):
    """A warm cache answers without dlib; a moved box (new detector) is a cache miss."""
    paths = _images(tmp_path)
    boxes = np.array([[10, 20, 30, 40]] * 3, np.float32)
    emb = _unit(np.random.default_rng(1).normal(size=(3, 128)).astype(np.float32))
    keys = [
        f"{_key(p)}|{','.join(f'{v:.1f}' for v in b)}" for p, b in zip(paths, boxes, strict=True)
    ]
    cache = teacher_cache_path(tmp_path / "cache", paths)
    cache.parent.mkdir(parents=True)
    np.savez(cache, keys=np.asarray(keys), emb=emb)
    assert cache.name.startswith("teacher-dlib-")
    got = teacher_embeddings(paths, boxes, tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(got, emb)
    if importlib.util.find_spec("dlib") is None:
        moved = boxes.copy()
        moved[1, 0] += 5
        with pytest.raises(TrainingError, match=r"doorface\[teacher\]"):
            teacher_embeddings(paths, moved, tmp_path / "cache", progress=False)


def test_unknown_teacher_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="unknown teacher"):
        teacher_embeddings([], np.zeros((0, 4)), tmp_path, "facenet")
