"""The models inside the package: load, match their manifests, recognise real people."""

import json

import numpy as np
import pytest

from edge.embedder import Embedder
from edge.manifest import load_manifest, manifest_path_for, sha256_file
from edge.pipeline import DEFAULT_MODEL, SHIPPED_MODELS, SMALL_MODEL, resolve_model

SIZE_LIMIT = {DEFAULT_MODEL: 6 * 2**20, SMALL_MODEL: 10**6}  # int8 weights: 5.5 MiB, 0.84 MB


def test_shipped_models_resolve_by_name_and_the_default_is_dlibs_resnet():
    assert resolve_model(None) == DEFAULT_MODEL
    assert resolve_model("doorface-small") == SMALL_MODEL == SHIPPED_MODELS["doorface-small"]
    assert resolve_model("dlib-resnet-v1") == DEFAULT_MODEL
    assert str(resolve_model("elsewhere/m.tflite")) == "elsewhere/m.tflite"
    assert Embedder(DEFAULT_MODEL).preprocessing == "dlib-chip-1"
    assert Embedder(SMALL_MODEL).preprocessing == "dlib-chip-1"  # dlib's, pruned and distilled
    for model in (DEFAULT_MODEL, SMALL_MODEL):
        assert model.with_suffix(".md").is_file(), "its origin and licence travel with it"


@pytest.mark.parametrize("model", [DEFAULT_MODEL, SMALL_MODEL], ids=lambda p: p.stem)
def test_shipped_model_matches_its_manifest(model):
    assert model.stat().st_size < SIZE_LIMIT[model]
    manifest = load_manifest(manifest_path_for(model))
    assert manifest.tflite_sha256 == sha256_file(model)
    assert manifest.quantization == "int8"
    assert manifest.input_quant.dtype == "int8" and manifest.output_quant.dtype == "int8"
    assert 0.0 < manifest.threshold < 1.0
    raw = json.loads(manifest_path_for(model).read_text())
    assert raw["metrics"], "the manifest records the model's measured accuracy"


@pytest.mark.shared_data
@pytest.mark.parametrize("model", [DEFAULT_MODEL, SMALL_MODEL], ids=lambda p: p.stem)
def test_shipped_model_separates_two_lfw_people(lfw_dir, yunet, model):
    from edge.preprocess import face_crop_from_file

    embedder = Embedder(model)
    people = {"Jennifer_Capriati": [], "Vicente_Fox": []}
    for name in people:
        for i in range(1, 7):
            path = lfw_dir / name / f"{name}_{i:04d}.jpg"
            crop = face_crop_from_file(path, yunet, embedder.input_size, embedder.preprocessing)
            people[name].append(crop.crop)
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
