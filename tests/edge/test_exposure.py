"""edge.exposure: under-exposed crops brightened towards the target, lit ones untouched; noisy
crops smoothed, clean ones untouched."""

from __future__ import annotations

import numpy as np
import pytest

from edge import exposure
from edge.exposure import (
    DENOISE_MIN_SIDE,
    MAX_GAIN,
    NOISE_ABOVE,
    SMOOTH_ABOVE_GAIN,
    TARGET,
    centre_luminance,
    exposure_gain,
    noise_level,
    normalise_exposure,
)


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
def test_a_darkened_face_scores_closer_to_itself(yunet, astronaut_bgr, name, monkeypatch):
    """Each shipped model on a real face: the same crop at a quarter of its brightness scores
    higher against the original (the model's scale) when brightened than without; by 0.02 at
    least for doorface's student, measurably for dlib's sturdier ResNet. Brightening alone:
    the smoothing gates are off here (a noise-free dark face is not what they are for)."""
    monkeypatch.setattr(exposure, "SMOOTH_ABOVE_GAIN", np.inf)
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


def _noisy(crop: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, (*crop.shape[:2], 1))
    return np.clip(crop.astype(np.float32) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_noise_level_reads_the_sigma_of_added_noise(sigma):
    assert noise_level(_flat(100, 150)) == 0.0
    assert noise_level(_noisy(_flat(100, 150), sigma)) == pytest.approx(sigma, rel=0.05)


def test_noisy_crops_are_smoothed_and_a_clean_face_is_not(yunet, astronaut_bgr):
    from edge.preprocess import aligned_faces

    face = aligned_faces(astronaut_bgr, yunet, 150, preprocessing="dlib-chip-1")[0].crop
    lit_face = np.clip(face.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)  # no gain
    assert exposure_gain(lit_face) == 1.0 and noise_level(lit_face) < NOISE_ABOVE / 2
    noisy = _noisy(lit_face, 8.0)
    out = normalise_exposure(np.stack([lit_face, noisy]))
    assert np.array_equal(out[0], lit_face)  # a sharp, clean face passes unchanged
    assert noise_level(out[1]) < NOISE_ABOVE < noise_level(noisy)


def test_small_crops_are_never_smoothed():
    """Below DENOISE_MIN_SIDE (the small encoder's 64 px) texture reads as noise: no gate."""
    side = DENOISE_MIN_SIDE - 1
    noisy = _noisy(_flat(TARGET + 20, side), 8.0)
    assert noise_level(noisy) > NOISE_ABOVE
    assert np.array_equal(normalise_exposure(noisy[None])[0], noisy)
    assert not np.array_equal(
        normalise_exposure(np.pad(noisy, ((1, 0), (1, 0), (0, 0)))[None])[0][1:, 1:], noisy
    )


def test_strongly_brightened_crops_are_smoothed_whatever_their_noise_reads():
    """A clean crop (a checkerboard of 15 px squares, no noise) at a fifth of the target
    brightness: brightened x4 (> SMOOTH_ABOVE_GAIN), so smoothed although its noise estimate
    stays far under the bar; at 1/1.8 of the target (x1.8, not above the gain gate) only
    brightened."""
    yy, xx = np.mgrid[:150, :150]
    squares = ((yy // 15 + xx // 15) % 2 * 6 - 3).astype(np.float32)[..., None]

    def at(level: float) -> np.ndarray:
        return np.clip(level + squares, 0, 255).astype(np.uint8).repeat(3, axis=2)

    dim, lighter = at(TARGET / 5), at(TARGET / 1.8)
    assert exposure_gain(dim) > SMOOTH_ABOVE_GAIN >= exposure_gain(lighter)
    smoothed, brightened = normalise_exposure(np.stack([dim, lighter]))
    unsmoothed = normalise_exposure(dim[None], gain_above=np.inf)[0]
    assert noise_level(unsmoothed) < NOISE_ABOVE / 10
    assert np.abs(smoothed.astype(int) - unsmoothed).max() > 5  # the squares' edges softened
    gain = exposure_gain(lighter)
    expected = np.clip(lighter.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    assert np.array_equal(brightened, expected)


def test_a_smoothed_dark_noisy_face_is_still_the_same_person(yunet, astronaut_bgr):
    """dlib's encoder on a real face at 20% brightness with sensor noise (both gates fire):
    the smoothed crop still scores far above the threshold against the clean one. Whether
    smoothing raises recognition is a population question: bench_light.py measures it."""
    from edge.embedder import Embedder
    from edge.pipeline import SHIPPED_MODELS
    from edge.preprocess import aligned_faces

    embedder = Embedder(SHIPPED_MODELS["dlib-resnet-v1"], exposure=True)
    face = aligned_faces(astronaut_bgr, yunet, 150, preprocessing="dlib-chip-1")[0].crop
    dark = _noisy((face.astype(np.float32) * 0.2).astype(np.uint8), 4.0)
    assert exposure_gain(dark) > SMOOTH_ABOVE_GAIN
    score = float(embedder.scoring.pairwise(embedder.embed(dark), embedder.embed(face))[0, 0])
    assert score > embedder.scoring.threshold + 0.3
