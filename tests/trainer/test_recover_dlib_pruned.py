"""Rebuilding the shipped ``doorface-small`` (dlib pruned and distilled, int8) as a trainable
float model, so ``trainer prune-dlib --init-from`` can go on training it when its run is gone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.dlib_resnet import packaged_weights, read_weights
from edge.embedder import Embedder
from edge.pipeline import resolve_model
from tests.model_factory import astronaut_faces
from trainer.errors import TrainingError
from trainer.recover import dlib_pruned_from_tflite, trained_model


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def rebuild():
    """How ``trainer prune-dlib --init-from`` rebuilds an int8 file (with dlib's weights)."""
    weights = read_weights(packaged_weights())
    return lambda path: dlib_pruned_from_tflite(path, weights)


@pytest.fixture(scope="module")
def small() -> Path:
    return Path(resolve_model("doorface-small"))


def test_the_shipped_small_model_comes_back_as_the_float_network_it_was(small, rebuild):
    model = rebuild(small)
    faces = astronaut_faces(150)
    rng = np.random.default_rng(0)  # the face, and the face lit, shifted and noisy
    views = np.concatenate(
        [faces, np.clip(faces * 0.6 + rng.normal(0, 6, faces.shape), 0, 255), np.roll(faces, 4, 2)]
    ).astype(np.uint8)
    float_emb = model.predict(views.astype(np.float32), verbose=0)
    int8_emb = Embedder(small, threads=1, flip=False, exposure=False).embed(views)
    cos = _cosines(float_emb, int8_emb)
    assert cos.min() > 0.99, cos
    # the file's widths and stem: 0.76 M parameters, a 7x7/4 stem to a 36x36 map
    assert model.count_params() == 761_896
    assert model.layers[1].strides == (4, 4) and model.layers[1].output.shape[1] == 36


def test_init_from_takes_the_shipped_tflite_and_refuses_others(
    small, rebuild, tmp_path, trainer_arch_model
):
    assert trained_model(small, rebuild).count_params() == 761_896
    with pytest.raises(TrainingError, match="not a pruned dlib network") as err:
        trained_model(trainer_arch_model, rebuild)
    assert "\n" not in str(err.value)
    (tmp_path / "junk.tflite").write_bytes(b"not a model")
    for path, message in [
        (tmp_path / "missing.tflite", "is not a file"),
        (tmp_path / "junk.tflite", "--init-from"),
    ]:
        with pytest.raises(TrainingError, match=message) as err:
            trained_model(path, rebuild)
        assert "\n" not in str(err.value)
