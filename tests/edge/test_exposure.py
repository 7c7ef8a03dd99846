"""edge.exposure: under-exposed crops brightened towards the target, lit ones untouched."""

from __future__ import annotations

import numpy as np
import pytest

from edge.exposure import MAX_GAIN, TARGET, centre_luminance, exposure_gain, normalise_exposure


def _flat(value: float, size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_centre_luminance_is_bt601_over_the_face_centre():
    crop = _flat(0)
    crop[16:56, 12:52] = (200, 100, 50)  # only the centre counts
    assert centre_luminance(crop) == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50, abs=0.01)


def test_lit_crops_pass_unchanged_and_dark_ones_reach_the_target():
    lit, dark, black = _flat(TARGET + 20), _flat(TARGET / 2), _flat(3)
    before = np.stack([lit, dark, black])
    out = normalise_exposure(before)
    assert np.array_equal(before[0], lit) and np.array_equal(out[0], lit)  # never darkened
    assert centre_luminance(out[1]) == pytest.approx(TARGET, abs=1.0)
    assert exposure_gain(black) == MAX_GAIN and out[2].max() == round(3 * MAX_GAIN)
    assert np.array_equal(before[1], dark)  # the input is left alone


@pytest.mark.parametrize("name", ["dlib-resnet-v1", "doorface-small"])
def test_a_darkened_face_scores_closer_to_itself(yunet, astronaut_bgr, name):
    """Each shipped model on a real face: the same crop at a quarter of its brightness scores
    higher against the original (the model's scale) with exposure normalisation than
    without; by 0.02 at least for doorface's student, measurably for dlib's sturdier ResNet."""
    from edge.embedder import Embedder
    from edge.pipeline import SHIPPED_MODELS
    from edge.preprocess import aligned_faces

    plain = Embedder(SHIPPED_MODELS[name])
    crop = aligned_faces(astronaut_bgr, yunet, plain.input_size, preprocessing=plain.preprocessing)
    crop = crop[0].crop
    dim = (crop.astype(np.float32) * 0.25).astype(np.uint8)
    score = plain.scoring.pairwise
    reference = plain.embed(crop)
    without = float(score(plain.embed(dim), reference)[0, 0])
    brightened = Embedder(SHIPPED_MODELS[name], exposure=True).embed(dim)
    with_exposure = float(score(brightened, reference)[0, 0])
    assert with_exposure > without + 0.02
