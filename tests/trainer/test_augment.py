"""Door-camera augmentation: each transform does what it claims, seeded and within range."""

from __future__ import annotations

import dataclasses

import numpy as np

from trainer.augment import AugmentConfig, augment_batch, augment_one

#: every transform off: the crop must come back unchanged (as float32)
OFF = AugmentConfig(flip=0, geometry_p=0, photometric_p=0, blur_p=0, noise_p=0, grey_p=0)


def _crops(n: int = 6, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)
    x[:, :, : size // 2, 0] = 250  # left half red-heavy: flips and greys are visible
    return x


def test_output_shape_dtype_range_and_input_untouched():
    crops = _crops()
    before = crops.copy()
    out = augment_batch(crops, np.random.default_rng(1))
    assert out.shape == crops.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0 and np.isfinite(out).all()
    np.testing.assert_array_equal(crops, before)


def test_all_off_is_identity():
    crops = _crops()
    np.testing.assert_array_equal(augment_batch(crops, np.random.default_rng(2), OFF), crops)


def test_seeded_and_varied():
    crops = _crops()
    a = augment_batch(crops, np.random.default_rng(3))
    b = augment_batch(crops, np.random.default_rng(3))
    c = augment_batch(crops, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1.0


def test_flip_mirrors_left_right():
    crop = _crops(1)[0]
    out = augment_one(crop, np.random.default_rng(0), dataclasses.replace(OFF, flip=1.0))
    np.testing.assert_array_equal(out, crop[:, ::-1])


def test_grey_as_from_an_infrared_camera():
    crop = _crops(1)[0]
    out = augment_one(crop, np.random.default_rng(0), dataclasses.replace(OFF, grey_p=1.0))
    np.testing.assert_allclose(out[..., 0], out[..., 1])
    np.testing.assert_allclose(out[..., 1], out[..., 2])
    expected = crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(out[..., 0], expected, atol=1e-3)


def test_grey_probability_is_respected():
    crops = np.repeat(_crops(1), 400, axis=0)
    out = augment_batch(crops, np.random.default_rng(5), dataclasses.replace(OFF, grey_p=0.15))
    grey = np.all(np.abs(out[..., 0] - out[..., 2]) < 1e-3, axis=(1, 2))
    assert 0.10 < grey.mean() < 0.20


def test_geometry_is_small():
    """Rotation, scale and shift at their limits move a centred square only a few pixels."""
    crop = np.zeros((64, 64, 3), np.uint8)
    crop[24:40, 24:40] = 255
    cfg = dataclasses.replace(OFF, geometry_p=1.0)
    rng = np.random.default_rng(6)
    for _ in range(50):
        out = augment_one(crop, rng, cfg)
        ys, xs = np.nonzero(out[..., 0] > 127)
        assert abs(ys.mean() - 31.5) < 5 and abs(xs.mean() - 31.5) < 5
        assert 180 < len(ys) < 350  # area of a 16 px square scaled by 0.92..1.08, squared


def test_photometric_changes_exposure_but_keeps_structure():
    crop = _crops(1)[0]
    cfg = dataclasses.replace(OFF, photometric_p=1.0)
    rng = np.random.default_rng(7)
    means = []
    for _ in range(40):
        out = augment_one(crop, rng, cfg)
        means.append(out.mean())
        corr = np.corrcoef(out.ravel(), crop.astype(np.float32).ravel())[0, 1]
        assert corr > 0.8
    assert np.std(means) > 10  # brightness really varies


def test_blur_smooths():
    crop = _crops(1, 64)[0]
    out = augment_one(crop, np.random.default_rng(8), dataclasses.replace(OFF, blur_p=1.0))
    assert (
        np.abs(np.diff(out, axis=1)).mean()
        < 0.7 * np.abs(np.diff(crop.astype(float), axis=1)).mean()
    )
