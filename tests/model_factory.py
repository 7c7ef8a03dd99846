"""Real int8 models for tests, made through the converter's own API (no shared data needed).

``make_tiny_int8_model(out_dir)`` builds a small random-weight encoder, calibrates it on
augmented crops of scikit-image's astronaut (aligned with the edge's preprocessing), converts it
with :func:`converter.pipeline.quantize` and returns the ``.tflite`` path; ``model.json`` lies
beside it. Random weights are enough for contract tests (shapes, quantisation, manifest, the
edge loading it); tests that need meaningful embeddings train their own (tests/converter).
Takes ~10 s, most of it importing TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_tiny_encoder(input_size: int = 32, embedding_size: int = 128, seed: int = 0):
    """A 4-conv encoder in the doorface contract: float 0..255 RGB in, unit 128-d out."""
    import keras

    from trainer.model import L2Normalize

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for filters in (16, 32, 64, 96):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(embedding_size, name="embedding")(x)
    outputs = L2Normalize(name="l2")(x)
    return keras.Model(inputs, outputs, name="tiny_encoder")


def astronaut_faces(size: int, n: int = 32, seed: int = 0) -> np.ndarray:
    """``n`` aligned RGB crops of the astronaut, jittered (shift, brightness, flip, noise)."""
    import cv2
    import skimage.data

    from edge.detectors import DetectorSettings, create_detector
    from edge.preprocess import face_crop

    image = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    big = face_crop(image, create_detector(DetectorSettings(backend="haar")), size * 2).crop  # RGB
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        dx, dy = rng.uniform(-2, 2, 2)
        scale = rng.uniform(0.95, 1.05)
        m = cv2.getRotationMatrix2D((size, size), rng.uniform(-8, 8), scale)
        m[:, 2] += (dx, dy)
        warped = cv2.warpAffine(big, m, (size * 2, size * 2), borderMode=cv2.BORDER_REFLECT)
        crop = cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        crop = crop * rng.uniform(0.7, 1.3) + rng.normal(0, 4, crop.shape)
        if i % 2:
            crop = crop[:, ::-1]
        out[i] = np.clip(crop, 0, 255).astype(np.uint8)
    return out


def make_tiny_int8_model(out_dir: Path, input_size: int = 32) -> Path:
    """Build, calibrate and convert a tiny encoder; returns ``out_dir/tiny.tflite``."""
    return _int8_model(out_dir, "tiny", build_tiny_encoder(input_size), input_size)


def make_trainer_arch_int8_model(out_dir: Path) -> Path:
    """``trainer.model.build_encoder(64)`` (doorface's own architecture, which ``doorface-small``
    shipped until 2026-12-07) with random weights, BatchNorm statistics moved by one batch of
    generated faces, converted per-tensor as that model was; returns ``out_dir/arch64.tflite``.
    Its graph fixes the batch at 1. About 20 s."""
    import keras

    from tests.trainer.synthetic import synthetic_faces
    from trainer.model import build_encoder

    keras.utils.set_random_seed(0)
    model = build_encoder(64)
    faces, _ = synthetic_faces(people=8, per_person=8, size=64, seed=5)
    model(faces.crops.astype(np.float32), training=True)
    return _int8_model(out_dir, "arch64", model, 64, per_channel=False)


def _int8_model(out_dir: Path, name: str, model, input_size: int, per_channel=True) -> Path:
    from converter.pipeline import QuantizeOptions, quantize

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_path = out_dir / f"{name}.keras"
    model.save(keras_path)
    out = out_dir / f"{name}.tflite"
    quantize(
        keras_path,
        None,
        out,
        QuantizeOptions(mode="int8", threshold=0.5, progress=False, per_channel=per_channel),
        faces=astronaut_faces(input_size),
    )
    return out
