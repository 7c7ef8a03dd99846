"""Door-camera augmentation of aligned RGB uint8 crops, in NumPy/OpenCV (never in the model).

What a door camera varies, and what each transform imitates:

- mirror pose (``flip``) and a detector's landmark jitter (``geometry``: rotation, scale,
  shift);
- exposure (``photometric``: brightness, contrast, gamma);
- a face far from the camera (``small``): the crop is shrunk to 24-40 pixels and scaled back
  up, as the edge upsamples a 30-pixel face to the encoder's input;
- strong side light (``side_light``): a brightness ramp across the face, one half lit and the
  other in shadow, at a random angle;
- night without IR (``dark``): exposure cut to 12-40%, then sensor noise that grows as the
  signal falls (shot noise plus read noise), as a small sensor at high gain gives;
- defocus or motion blur (``blur``): Gaussian or a short line kernel at a random angle;
- plain sensor ``noise``, ``grey`` images from IR night mode, and ``jpeg`` re-compression
  (quality 25-85) as an RTSP camera delivers.

Each is applied with its own probability so most crops stay close to what the edge feeds;
the door ones (small, side light, dark, motion blur, jpeg) are the conditions the door
benchmark tests, and only the "door" recipe of :data:`AUGMENTS` turns them on.
Cost: about 0.1-0.2 ms per 64x64 crop (measured on a busy 2-core machine), far below a
training step, so it runs on the CPU in the input thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5
    rotate_deg: float = 8.0
    scale: float = 0.08
    shift: float = 0.05  # fraction of the crop side
    geometry_p: float = 0.7
    small_p: float = 0.15
    small_px: tuple[int, int] = (24, 40)  # shrink a 64 px crop to this many pixels and back
    brightness: float = 0.25  # +- fraction of 255
    contrast: float = 0.3
    gamma: float = 0.3
    photometric_p: float = 0.8
    side_light_p: float = 0.15
    dark_p: float = 0.12
    blur_p: float = 0.15
    motion_blur: float = 0.5  # share of blurs that are motion (line kernel) rather than focus
    noise_p: float = 0.15
    grey_p: float = 0.15
    jpeg_p: float = 0.15


#: ``trainer train --augment``: "basic" is the recipe of the shipped model (door transforms
#: off); "door" adds small faces, side light, darkness, motion blur and JPEG. Measured
#: (docs/BENCHMARKS.md, "Trainer"): a 95-min "door" run with relational distillation ended at
#: LFW 0.911 (int8) against 0.921 for "basic" at 85 min, so "basic" stays the default.
AUGMENTS = {
    "basic": AugmentConfig(small_p=0, side_light_p=0, dark_p=0, motion_blur=0, jpeg_p=0),
    "door": AugmentConfig(),
}


def augment_batch(
    crops: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """Augmented float32 copy (N, S, S, 3), values 0..255."""
    out = np.empty(crops.shape, np.float32)
    for i, crop in enumerate(crops):
        out[i] = augment_one(crop, rng, config)
    return out


def augment_one(crop: np.ndarray, rng: np.random.Generator, c: AugmentConfig) -> np.ndarray:
    img = crop
    size = crop.shape[0]
    if rng.random() < c.flip:
        img = img[:, ::-1]
    if rng.random() < c.geometry_p:
        img = move(img, rng, c)
    if rng.random() < c.small_p:
        pixels = int(rng.integers(c.small_px[0], c.small_px[1] + 1))
        img = small_face(img, max(8, pixels * size // 64))
    img = img.astype(np.float32)
    if rng.random() < c.photometric_p:
        mean = img.mean()
        img = (img - mean) * (1.0 + rng.uniform(-c.contrast, c.contrast)) + mean
        img = img + rng.uniform(-c.brightness, c.brightness) * 255.0
        img = np.clip(img, 0.0, 255.0)
        img = 255.0 * (img / 255.0) ** np.exp(rng.uniform(-c.gamma, c.gamma))
    if rng.random() < c.side_light_p:
        img = side_light(img, rng.uniform(0, 2 * np.pi), rng.uniform(0.15, 0.5))
    if rng.random() < c.dark_p:
        img = dark(img, rng.uniform(0.12, 0.4), rng)
    if rng.random() < c.blur_p:
        if rng.random() < c.motion_blur:
            img = motion_blur(img, int(rng.integers(3, 8)) * size // 64 or 3, rng.uniform(0, 180))
        else:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.2) * size / 64)
    if rng.random() < c.noise_p:
        img = img + rng.normal(0.0, rng.uniform(2.0, 8.0), img.shape).astype(np.float32)
    if rng.random() < c.grey_p:
        grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
        img = np.repeat(grey[:, :, None], 3, axis=2)
    img = np.clip(img, 0.0, 255.0)
    if rng.random() < c.jpeg_p:
        img = jpeg(img, int(rng.integers(25, 86)))
    return img


def move(img: np.ndarray, rng: np.random.Generator, c: AugmentConfig) -> np.ndarray:
    """Rotated, scaled and shifted at random within ``c``'s limits (black where the crop
    leaves nothing)."""
    size = img.shape[0]
    angle = rng.uniform(-c.rotate_deg, c.rotate_deg)
    scale = 1.0 + rng.uniform(-c.scale, c.scale)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    m[:, 2] += rng.uniform(-c.shift, c.shift, 2) * size
    return cv2.warpAffine(
        np.ascontiguousarray(img), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=0
    )


def small_face(img: np.ndarray, pixels: int) -> np.ndarray:
    """The crop as it looks when the face was only ``pixels`` wide: area-shrunk, then
    bilinearly enlarged back, as the edge's alignment enlarges a small face."""
    size = img.shape[0]
    if pixels >= size:
        return img
    tiny = cv2.resize(np.ascontiguousarray(img), (pixels, pixels), interpolation=cv2.INTER_AREA)
    return cv2.resize(tiny, (size, size), interpolation=cv2.INTER_LINEAR)


def side_light(img: np.ndarray, angle: float, shadow: float) -> np.ndarray:
    """Multiply by a linear ramp across the crop at ``angle`` (radians): the lit edge x1.3,
    the shadowed edge x``shadow``, as a low sun or a porch lamp on one side gives."""
    size = img.shape[0]
    t = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    ramp = np.cos(angle) * t[None, :] + np.sin(angle) * t[:, None]  # -1.4..1.4
    ramp = np.clip((ramp + 1.0) / 2.0, 0.0, 1.0)
    gain = shadow + (1.3 - shadow) * ramp
    return np.asarray(img, np.float32) * gain[:, :, None]


def dark(img: np.ndarray, exposure: float, rng: np.random.Generator) -> np.ndarray:
    """Under-exposed and noisy: the signal scaled by ``exposure``, then shot noise (Poisson-like,
    variance proportional to the signal) and read noise, both amplified by the gain that a
    camera's auto-exposure applies to bring the image back up to half its brightness."""
    signal = np.asarray(img, np.float32) * exposure
    gain = float(np.clip(0.5 / exposure, 1.0, 3.0))
    shot = rng.normal(0.0, 1.0, signal.shape).astype(np.float32) * np.sqrt(signal + 1.0) * 0.8
    read = rng.normal(0.0, 2.0, signal.shape).astype(np.float32)
    return (signal + shot + read) * gain


def motion_blur(img: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    """Blur along a line of ``length`` pixels at ``angle_deg``: a face moving during exposure."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(np.asarray(img, np.float32), -1, kernel)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round trip through JPEG at ``quality`` (blocking and ringing of a compressed stream)."""
    u8 = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) if ok else img


#: The door's conditions: the door benchmark's clips are made in them (benchmarks/door_clips.py),
#: and converter operating-point shows every held-out photo in one of them (:func:`door_probes`)
#: to measure a model at the door without the test people.
DOOR_CONDITIONS = ("normal", "small", "dark", "side-lit")


def door_probe(crop: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """An aligned uint8 crop as the door shows it in ``condition``: a 36-52 px face (the door's
    small faces are 40-60 px boxes), under-exposed to 20-35% with sensor noise and the camera's
    gain, or lit from one side with the other at 15-30%; "normal" is the crop as it is."""
    if condition == "small":
        out = small_face(crop, int(rng.integers(36, 53)))
    elif condition == "dark":
        out = dark(crop, float(rng.uniform(0.2, 0.35)), rng)
    elif condition == "side-lit":
        out = side_light(crop, float(rng.choice([0.0, np.pi])), float(rng.uniform(0.15, 0.3)))
    elif condition == "normal":
        return crop
    else:
        raise ValueError(f"door condition {condition!r}: one of {', '.join(DOOR_CONDITIONS)}")
    return np.clip(out, 0, 255).astype(np.uint8)


def door_probes(crops: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every crop in one door condition, a quarter each in a seeded order: (probes uint8, the
    index into :data:`DOOR_CONDITIONS` of each)."""
    rng = np.random.default_rng(seed)
    conditions = rng.permutation(np.arange(len(crops)) % len(DOOR_CONDITIONS))
    probes = np.stack(
        [door_probe(c, DOOR_CONDITIONS[k], rng) for c, k in zip(crops, conditions, strict=True)]
    )
    return probes, conditions
