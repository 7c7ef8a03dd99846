"""The default model inside the package: loads, matches its manifest, recognises real people."""

import json

import numpy as np
import pytest

from edge.embedder import Embedder
from edge.manifest import load_manifest, manifest_path_for, sha256_file
from edge.pipeline import DEFAULT_MODEL, resolve_model


def test_default_model_is_shipped_and_matches_its_manifest():
    assert resolve_model(None) == DEFAULT_MODEL
    assert DEFAULT_MODEL.stat().st_size < 2 * 2**20
    manifest = load_manifest(manifest_path_for(DEFAULT_MODEL))
    assert manifest.tflite_sha256 == sha256_file(DEFAULT_MODEL)
    assert manifest.quantization == "int8"
    assert manifest.input_quant.dtype == "int8" and manifest.output_quant.dtype == "int8"
    assert 0.0 < manifest.threshold < 1.0
    raw = json.loads(manifest_path_for(DEFAULT_MODEL).read_text())
    assert raw["metrics"], "the manifest records the model's measured accuracy"


@pytest.mark.shared_data
def test_default_model_separates_two_lfw_people(lfw_dir, yunet):
    from edge.preprocess import face_crop_from_file

    embedder = Embedder(DEFAULT_MODEL)
    people = {"Jennifer_Capriati": [], "Vicente_Fox": []}
    for name in people:
        for i in range(1, 7):
            path = lfw_dir / name / f"{name}_{i:04d}.jpg"
            people[name].append(face_crop_from_file(path, yunet, embedder.input_size).crop)
    a = embedder.embed(np.stack(people["Jennifer_Capriati"]))
    b = embedder.embed(np.stack(people["Vicente_Fox"]))
    score = embedder.scoring.pairwise  # the model's scale (cohort-normalised when it has one)
    same = np.concatenate([score(a, a)[np.triu_indices(6, 1)], score(b, b)[np.triu_indices(6, 1)]])
    different = score(a, b).ravel()
    assert same.mean() > different.mean() + 0.3
    # The shipped threshold is strict (1% false accepts on held-out identities; 0.62 true accepts on
    # pairsDevTest): nearly no different pair passes it, a good part of the same pairs do.
    assert (different >= embedder.scoring.threshold).mean() <= 0.05
    assert (same >= embedder.scoring.threshold).mean() >= 0.4
