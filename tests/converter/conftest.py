"""Session fixtures: one tiny encoder trained on real LFW faces, converted once by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SIZE = 32
N_IDS = 24
PER_ID = 14


def _test_people(pairs_file: Path) -> set[str]:
    names = set()
    for line in pairs_file.read_text().splitlines()[1:]:
        parts = line.split()
        names.add(parts[0])
        if len(parts) == 4:
            names.add(parts[2])
    return names


@pytest.fixture(scope="session")
def lfw_identity_crops(lfw_dir: Path, pairs_dev_test: Path, yunet):
    """(crops, labels): PER_ID aligned crops each of N_IDS LFW people not in pairsDevTest."""
    from edge.preprocess import face_crop_from_file

    excluded = _test_people(pairs_dev_test)
    people = sorted(
        d for d in lfw_dir.iterdir() if d.name not in excluded and len(list(d.iterdir())) >= PER_ID
    )[:N_IDS]
    crops, labels = [], []
    for label, person in enumerate(people):
        for path in sorted(person.iterdir())[:PER_ID]:
            crops.append(face_crop_from_file(path, yunet, SIZE).crop)
            labels.append(label)
    return np.stack(crops), np.array(labels)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, lfw_identity_crops) -> Path:
    """A tiny encoder trained for a few seconds (softmax on scaled cosine logits) + training.json.

    Returns the .keras path. The first 10 images of each person are training, the rest held out.
    """
    import keras

    from tests.model_factory import build_tiny_encoder

    crops, labels = lfw_identity_crops
    train = np.arange(len(labels)) % PER_ID < 10
    encoder = build_tiny_encoder(SIZE, seed=1)
    head = keras.layers.Dense(N_IDS, use_bias=False)
    logits = keras.layers.Rescaling(16.0)(head(encoder.output))
    classifier = keras.Model(encoder.input, logits)
    classifier.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = crops[train].astype(np.float32)
    x = np.concatenate([x, x[:, :, ::-1]])  # mirror augmentation
    y = np.concatenate([labels[train], labels[train]])
    classifier.fit(x, y, epochs=25, batch_size=32, verbose=0, shuffle=True)
    folder = tmp_path_factory.mktemp("trained")
    path = folder / "encoder.keras"
    encoder.save(path)
    (folder / "training.json").write_text(
        json.dumps({"threshold": 0.45, "metrics": {"note": "test fixture", "epochs": 25}})
    )
    return path


@pytest.fixture(scope="session")
def converted(trained_model: Path, lfw_dir: Path, yunet_path: Path, tmp_path_factory) -> Path:
    """trained_model through ``converter quantize`` (in-process main), calibrated on LFW."""
    from converter.cli import main

    out = tmp_path_factory.mktemp("converted") / "encoder.tflite"
    rc = main(
        [
            "quantize",
            str(trained_model),
            "--calibration",
            str(lfw_dir),
            "--out",
            str(out),
            "--samples",
            "120",
            "--detector-model",
            str(yunet_path),
            "--quiet",
        ]
    )
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def celeba_crops(celeba_dir: Path, yunet) -> np.ndarray:
    """Aligned crops of 80 CelebA faces (people the model and calibration never saw)."""
    from converter.calibration import collect_faces

    crops, _ = collect_faces(celeba_dir, SIZE, 80, detector=yunet, progress=False)
    return crops


@pytest.fixture(scope="session")
def float32_model(tmp_path_factory) -> Path:
    """A float32 (not quantised) conversion of a random tiny encoder, manifest beside it."""
    from converter.pipeline import QuantizeOptions, quantize
    from tests.model_factory import build_tiny_encoder

    folder = tmp_path_factory.mktemp("float32")
    build_tiny_encoder(SIZE).save(folder / "tiny.keras")
    out = folder / "tiny.tflite"
    quantize(folder / "tiny.keras", None, out, QuantizeOptions(mode="float32", threshold=0.5))
    return out
