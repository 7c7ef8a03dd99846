"""Fast unit tests (no TensorFlow): sampling, pair files, verification maths, flatbuffer reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.calibration import images_by_identity, round_robin
from converter.errors import ConverterError
from converter.verification import (
    accuracy_at,
    best_threshold,
    kfold_accuracy,
    read_pairs,
    verification_metrics,
)


def _tree(root: Path, layout: dict[str, int]) -> None:
    for person, n in layout.items():
        (root / person).mkdir(parents=True)
        for i in range(n):
            (root / person / f"{person}_{i + 1:04d}.jpg").write_bytes(b"x")


def test_round_robin_spreads_over_people_and_is_seeded(tmp_path: Path) -> None:
    _tree(tmp_path, {"ann": 5, "bob": 1, "cid": 2, "dee": 3})
    (tmp_path / "notes.txt").write_text("not an image")
    groups = images_by_identity(tmp_path)
    assert sorted(groups) == ["ann", "bob", "cid", "dee"]
    order = list(round_robin(groups, seed=3))
    assert len(order) == 11 and len(set(order)) == 11  # every image exactly once
    first_round = {p.parent.name for p in order[:4]}
    assert first_round == {"ann", "bob", "cid", "dee"}  # one of each person before repeats
    assert order == list(round_robin(groups, seed=3))
    assert order != list(round_robin(groups, seed=4))
    assert [p.parent.name for p in order[-2:]] == ["ann", "ann"]  # the deepest folder ends it


def test_read_pairs_view1_format_and_errors(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\nAnn_Lee\t1\t2\nAnn_Lee\t1\tBob_Ray\t3\n")
    parsed = read_pairs(pairs, tmp_path / "lfw")
    assert [(p.a.name, p.b.name, p.same) for p in parsed] == [
        ("Ann_Lee_0001.jpg", "Ann_Lee_0002.jpg", True),
        ("Ann_Lee_0001.jpg", "Bob_Ray_0003.jpg", False),
    ]
    assert parsed[1].b.parent == tmp_path / "lfw" / "Bob_Ray"
    pairs.write_text("1\nAnn_Lee 1 two\n")
    with pytest.raises(ConverterError, match=r"pairs.txt:2: not a pair line"):
        read_pairs(pairs, tmp_path)
    with pytest.raises(ConverterError, match="cannot read pairs file"):
        read_pairs(tmp_path / "missing.txt", tmp_path)


def test_verification_maths_on_known_scores() -> None:
    same = np.array([True, True, True, False, False, False])
    scores = np.array([0.9, 0.8, 0.35, 0.4, 0.1, 0.0])
    thr, acc = best_threshold(scores, same)
    assert acc == pytest.approx(5 / 6)
    assert accuracy_at(scores, same, thr) == pytest.approx(5 / 6)
    assert accuracy_at(scores, same, 0.3) == pytest.approx(5 / 6)  # 0.4 different-pair passes
    assert accuracy_at(scores, same, 0.5) == pytest.approx(5 / 6)  # 0.35 same-pair fails
    separable = np.r_[np.linspace(0.6, 0.9, 50), np.linspace(0.0, 0.4, 50)]
    labels = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    assert kfold_accuracy(separable, labels) == 1.0
    m = verification_metrics(separable, labels, threshold=0.7)
    expected = (np.sum(separable[:50] >= 0.7) + 50) / 100  # all different pairs rejected
    assert m["accuracy_best"] == 1.0 and m["accuracy"] == pytest.approx(expected)
    assert 0.80 < m["accuracy"] < 0.86
    assert 0.4 < m["best_threshold"] < 0.6


def test_inspect_rejects_non_tflite(tmp_path: Path) -> None:
    from converter.inspect import inspect_bytes, inspect_model

    with pytest.raises(ConverterError, match="no TFL3 identifier"):
        inspect_bytes(b"PK\x03\x04 a zip file, not a model")
    with pytest.raises(ConverterError, match="no such file"):
        inspect_model(tmp_path / "absent.tflite")
