"""P x K sampler invariants, reproducibility and identity exclusion from pair files."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data import pair_file_people
from trainer.errors import DataError, TrainingError
from trainer.sampler import PKSampler


def _labels():
    # 10 people with 1..10 images, plus 5 one-image people
    return np.concatenate([np.full(n, i) for i, n in enumerate(range(1, 11))] + [np.arange(20, 25)])


def test_pk_batches_hold_p_people_with_k_images_each_plus_singletons():
    labels = _labels()
    s = PKSampler(labels, p=4, k=3, singletons=2, seed=1)
    singles = {
        int(u) for u, c in zip(*np.unique(labels, return_counts=True), strict=True) if c == 1
    }
    for _ in range(50):
        idx = s.batch()
        assert len(idx) == s.batch_size == 4 * 3 + 2
        head, tail = idx[:12], idx[12:]
        people, counts = np.unique(labels[head], return_counts=True)
        assert len(people) == 4 and np.all(counts == 3)
        assert not set(people.tolist()) & singles  # one-image people never as anchors
        assert set(labels[tail].tolist()) <= singles and len(set(labels[tail].tolist())) == 2
        # people with >= K images are sampled without replacement
        for p in people:
            picked = head[labels[head] == p]
            if np.sum(labels == p) >= 3:
                assert len(set(picked.tolist())) == 3


def test_sampler_is_reproducible_and_seed_dependent():
    a = [PKSampler(_labels(), 4, 2, seed=5).batch() for _ in range(1)]
    s1, s2, s3 = (
        PKSampler(_labels(), 4, 2, seed=5),
        PKSampler(_labels(), 4, 2, seed=5),
        PKSampler(_labels(), 4, 2, seed=6),
    )
    seq1 = np.concatenate([s1.batch() for _ in range(10)])
    seq2 = np.concatenate([s2.batch() for _ in range(10)])
    seq3 = np.concatenate([s3.batch() for _ in range(10)])
    assert np.array_equal(seq1, seq2) and np.array_equal(a[0], seq1[:8])
    assert not np.array_equal(seq1, seq3)


def test_sampler_needs_enough_multi_image_people():
    with pytest.raises(TrainingError, match="at least P=20"):
        PKSampler(_labels(), 20, 2)


def test_pair_file_people_reads_view1_and_view2(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("2 2\nAlice 1 2\nBob 3 Carol 1\nDave 1 2\nEve 2 Alice 4\n")
    assert pair_file_people(f) == {"Alice", "Bob", "Carol", "Dave", "Eve"}
    bad = tmp_path / "bad.txt"
    bad.write_text("1\nAlice 1\n")
    with pytest.raises(DataError, match="bad.txt:2"):
        pair_file_people(bad)


@pytest.mark.shared_data
def test_dev_test_people_are_disjoint_from_dev_train(pairs_dev_test, pairs_dev_train, lfw_dir):
    test_people = pair_file_people(pairs_dev_test)
    assert len(test_people) == 963
    assert not test_people & pair_file_people(pairs_dev_train)
    assert all((lfw_dir / p).is_dir() for p in sorted(test_people)[:50])
