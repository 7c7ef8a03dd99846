"""Fast unit tests (no TensorFlow): sampling and the flatbuffer reader (pair files and
verification maths are trainer.evaluate's, tested in tests/trainer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.calibration import images_by_identity, round_robin
from converter.errors import ConverterError


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


def test_inspect_rejects_non_tflite(tmp_path: Path) -> None:
    from converter.inspect import inspect_bytes, inspect_model

    with pytest.raises(ConverterError, match="no TFL3 identifier"):
        inspect_bytes(b"PK\x03\x04 a zip file, not a model")
    with pytest.raises(ConverterError, match="no such file"):
        inspect_model(tmp_path / "absent.tflite")
