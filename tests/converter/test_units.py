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


def test_manifest_detector_comes_from_training_json_else_calibration(tmp_path: Path) -> None:
    """training.json's record (what the model learned on) wins over the calibration detector;
    without either the manifest records none; a malformed record names its key."""
    from converter.pipeline import detector_trained_with
    from edge.detectors import DetectorSettings, create_detector
    from edge.errors import ModelError
    from edge.manifest import DetectorRecord

    model = tmp_path / "encoder.keras"
    haar = create_detector(DetectorSettings(backend="haar"))
    trained = {"backend": "yunet", "model": "y.onnx", "sha256": "ab" * 32}
    record = detector_trained_with(model, {"detector": trained}, haar)
    assert record == DetectorRecord("yunet", "y.onnx", "ab" * 32)
    assert detector_trained_with(model, {"threshold": 0.5}, haar) == haar.record
    assert detector_trained_with(model, None, None) is None
    with pytest.raises(ModelError, match=r"training.json: detector: sha256: missing"):
        detector_trained_with(model, {"detector": {"backend": "yunet", "model": "y"}}, haar)


def test_manifest_confidence_is_copied_from_training_json(tmp_path: Path) -> None:
    """training.json's ``confidence`` block (trainer.calibration.fit_confidence) goes into the
    manifest as is; without one there is none; a malformed one names its key."""
    from converter.pipeline import confidence_trained_with
    from edge.confidence import ConfidenceModel
    from edge.errors import ModelError
    from trainer.calibration import fit_confidence

    model = tmp_path / "encoder.keras"
    block = fit_confidence([0.1, 0.2, 0.3, 0.6, 0.7, 0.8], [0, 0, 0, 1, 1, 1], fitted_on="x")
    got = confidence_trained_with(model, {"threshold": 0.5, "confidence": block})
    assert got == ConfidenceModel(**block) and got.to_json() == block
    assert confidence_trained_with(model, {"threshold": 0.5}) is None
    assert confidence_trained_with(model, None) is None
    with pytest.raises(ModelError, match=r"training.json: confidence: a: must be a finite"):
        confidence_trained_with(model, {"confidence": {**block, "a": 0}})
