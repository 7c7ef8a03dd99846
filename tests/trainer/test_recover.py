"""Rebuilding a trainable float encoder from an int8 model of the trainer's architecture (as
``doorface-small`` shipped until 2026-12-07; here one with random weights), and --init-from."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from edge.embedder import Embedder
from tests.trainer.synthetic import synthetic_faces
from trainer.errors import TrainingError
from trainer.model import build_encoder
from trainer.recover import encoder_from_tflite, folded_weights
from trainer.train import TrainConfig, _init_weights


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    faces, _ = synthetic_faces(people=10, per_person=10, size=64, seed=5)
    return faces.crops


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_every_convolution_of_the_int8_model_is_found(trainer_arch_model):
    folded = folded_weights(trainer_arch_model)
    model = build_encoder(64)
    convs = [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)
    ]
    assert sorted(folded) == sorted(convs)
    kernel, bias, op = folded["stem"]
    assert kernel.shape == (3, 3, 3, 64) and bias.shape == (64,) and op == "CONV_2D"
    assert folded["gdc"][0].shape == (8, 8, 512, 1) and folded["gdc"][2] == "DEPTHWISE_CONV_2D"


def test_recovered_float_encoder_computes_what_the_int8_model_computes(crops, trainer_arch_model):
    model = encoder_from_tflite(trainer_arch_model, crops[:60])
    held = crops[60:]
    float_emb = model.predict(held.astype(np.float32), verbose=0)
    int8_emb = Embedder(trainer_arch_model, threads=1).embed(held)
    cos = _cosines(float_emb, int8_emb)
    assert cos.mean() > 0.99 and cos.min() > 0.97, (cos.mean(), cos.min())
    # BatchNorm starts near the identity in training mode too (batch statistics of like crops)
    train_emb = model(crops[:60].astype(np.float32), training=True).numpy()
    infer_emb = model.predict(crops[:60].astype(np.float32), verbose=0)
    assert _cosines(train_emb, infer_emb).mean() > 0.9
    # and it is a plain encoder: saved and reloaded, it gives the same embeddings
    assert model.count_params() == build_encoder(64).count_params()


def test_a_model_of_another_architecture_is_refused(crops, trainer_arch_model):
    with pytest.raises(TrainingError, match="not an encoder of this architecture"):
        encoder_from_tflite(trainer_arch_model, crops[:8], width=0.5)


def _cfg(tmp_path, init_from: str, **settings) -> TrainConfig:
    base = dict(roots=[], out=str(tmp_path / "run"), input_size=64, progress=False)
    return TrainConfig(init_from=init_from, **{**base, **settings})


def test_init_from_copies_a_keras_encoder_or_an_int8_tflite(tmp_path, crops, trainer_arch_model):
    faces, _ = synthetic_faces(people=4, per_person=4, size=32, seed=1)
    source = build_encoder(32, 16, width=0.25)
    source(faces.crops.astype(np.float32), training=True)  # move BatchNorm statistics
    source.save(tmp_path / "encoder.keras")
    target = build_encoder(32, 16, width=0.25)
    cfg = _cfg(
        tmp_path, str(tmp_path / "encoder.keras"), input_size=32, width=0.25, embedding_size=16
    )
    _init_weights(target, cfg, faces)
    x = faces.crops.astype(np.float32)
    np.testing.assert_allclose(
        target.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-6
    )

    shipped_faces, _ = synthetic_faces(people=4, per_person=4, size=64, seed=2)
    target = build_encoder(64)
    _init_weights(target, _cfg(tmp_path, str(trainer_arch_model)), shipped_faces)
    cos = _cosines(
        target.predict(crops.astype(np.float32), verbose=0),
        Embedder(trainer_arch_model).embed(crops),
    )
    assert cos.mean() > 0.99


@pytest.mark.parametrize(
    "init_from, message",
    [("missing.keras", "is not a file"), ("encoder.keras", "a different architecture")],
)
def test_init_from_errors_are_one_line(tmp_path, init_from, message):
    build_encoder(32, 16, width=0.25).save(tmp_path / "encoder.keras")
    faces, _ = synthetic_faces(people=2, per_person=2, size=64, seed=1)
    with pytest.raises(TrainingError, match=message) as err:
        _init_weights(build_encoder(64), _cfg(tmp_path, str(tmp_path / init_from)), faces)
    assert "\n" not in str(err.value)
