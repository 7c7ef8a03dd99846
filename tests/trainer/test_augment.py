"""Door-camera augmentation: each transform does what it claims, seeded and within range."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trainer.augment import (
    AugmentConfig,
    augment_batch,
    augment_one,
    dark,
    jpeg,
    motion_blur,
    side_light,
    small_face,
)

#: every transform off: the crop must come back unchanged (as float32)
OFF = AugmentConfig(
    flip=0,
    geometry_p=0,
    small_p=0,
    photometric_p=0,
    side_light_p=0,
    dark_p=0,
    blur_p=0,
    noise_p=0,
    grey_p=0,
    jpeg_p=0,
)


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


def _face_like(size: int = 64) -> np.ndarray:
    """A smooth pattern with detail at several scales (what blur and shrinking remove)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = 128 + 60 * np.sin(xx / 3.0) * np.cos(yy / 5.0) + 40 * np.sin((xx + yy) / 11.0)
    return np.repeat(np.clip(img, 0, 255)[:, :, None], 3, axis=2).astype(np.uint8)


def _detail(img: np.ndarray) -> float:
    return float(np.abs(np.diff(np.asarray(img, np.float32), axis=1)).mean())


def test_small_face_loses_detail_keeps_size():
    crop = _crops(1, 64)[0]  # pixel-level detail, which a 24-pixel face cannot hold
    out = small_face(crop, 24)
    assert out.shape == crop.shape
    assert _detail(out) < 0.7 * _detail(crop)
    assert abs(float(out.mean()) - float(crop.mean())) < 3.0  # same exposure
    crop = _face_like()
    np.testing.assert_array_equal(small_face(crop, 64), crop)  # no-op at full size


def test_side_light_darkens_one_side_brightens_the_other():
    crop = np.full((64, 64, 3), 100, np.uint8)
    out = side_light(crop, 0.0, 0.2)  # ramp along x: shadow on the left
    assert out[:, :8].mean() < 40 and out[:, -8:].mean() > 115
    up = side_light(crop, np.pi / 2, 0.2)  # along y: shadow on top
    assert up[:8].mean() < 40 and up[-8:].mean() > 115


def test_dark_is_darker_and_noisier_the_darker_it_gets():
    crop = np.full((64, 64, 3), 160, np.uint8)
    rng = np.random.default_rng(0)
    dim, very_dim = dark(crop, 0.4, rng), dark(crop, 0.12, rng)
    assert very_dim.mean() < dim.mean() < 160
    # relative noise grows as the signal falls (shot noise + read noise, amplified)
    assert very_dim.std() / very_dim.mean() > dim.std() / dim.mean() > 0.02


def test_motion_blur_smears_along_its_direction_only():
    img = np.zeros((32, 32), np.float32)
    img[16, 16] = 100.0
    out = motion_blur(img, 7, 0.0)  # horizontal
    np.testing.assert_allclose(out.sum(), 100.0, rtol=1e-4)  # brightness preserved
    assert (out[16] > 0).sum() >= 5 and out[10].max() < 1e-3  # a horizontal streak


def test_jpeg_round_trip_is_lossy_but_close():
    crop = _face_like().astype(np.float32)
    out = jpeg(crop, 30)
    assert out.shape == crop.shape
    err = np.abs(out - crop).mean()
    assert 0.1 < err < 12.0


def test_door_conditions_occur_at_their_rates():
    """With only 'dark' on (p=1), every crop is darker than the input; with it off, none is."""
    crops = np.full((40, 32, 32, 3), 150, np.uint8)
    only_dark = dataclasses.replace(OFF, dark_p=1.0)
    out = augment_batch(crops, np.random.default_rng(5), only_dark)
    assert (out.reshape(40, -1).mean(axis=1) < 130).all()


def test_door_probes_show_each_condition_a_quarter_of_the_time():
    from trainer.augment import DOOR_CONDITIONS, door_probes

    crop = np.random.default_rng(0).integers(60, 200, (64, 64, 3)).astype(np.uint8)
    crops = np.repeat(crop[None], 40, axis=0)
    probes, conditions = door_probes(crops, seed=3)
    assert probes.shape == crops.shape and probes.dtype == np.uint8
    assert np.bincount(conditions).tolist() == [10, 10, 10, 10]
    normal, small, dark, side = (conditions == k for k in range(len(DOOR_CONDITIONS)))
    np.testing.assert_array_equal(probes[normal], crops[normal])  # "normal" is the photo
    grad = [np.abs(np.diff(p.astype(np.float32), axis=1)).mean() for p in probes]
    assert max(np.array(grad)[small]) < np.abs(np.diff(crops[0].astype(np.float32), axis=1)).mean()
    assert probes[dark].mean() < 0.9 * crops[0].mean()  # darker even after the camera's gain
    halves = [(p[:, :32].mean(), p[:, 32:].mean()) for p in probes[side]]
    assert all(max(a, b) > 1.5 * min(a, b) for a, b in halves)  # one side in shadow
    again, _ = door_probes(crops, seed=3)
    np.testing.assert_array_equal(again, probes)


def test_an_unknown_door_condition_is_refused():
    from trainer.augment import door_probe

    with pytest.raises(ValueError, match="door condition 'foggy'"):
        door_probe(_crops(1, 64)[0], "foggy", np.random.default_rng(0))
