"""Door-camera augmentation of aligned RGB uint8 crops, in NumPy/OpenCV (never in the model).

What a door camera varies: mirror pose, exposure (brightness, contrast, gamma), slight
misalignment (rotation, scale, shift as a detector's landmarks jitter), defocus or motion blur,
sensor noise, and grey images from IR night mode. Each is applied with its own probability so
most crops stay close to what the edge feeds. Cost: ~20 us per 64x64 crop, far below a
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
    brightness: float = 0.25  # +- fraction of 255
    contrast: float = 0.3
    gamma: float = 0.3
    photometric_p: float = 0.8
    blur_p: float = 0.15
    noise_p: float = 0.15
    grey_p: float = 0.15


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
        angle = rng.uniform(-c.rotate_deg, c.rotate_deg)
        scale = 1.0 + rng.uniform(-c.scale, c.scale)
        m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
        m[:, 2] += rng.uniform(-c.shift, c.shift, 2) * size
        img = cv2.warpAffine(
            np.ascontiguousarray(img),
            m,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
    img = img.astype(np.float32)
    if rng.random() < c.photometric_p:
        mean = img.mean()
        img = (img - mean) * (1.0 + rng.uniform(-c.contrast, c.contrast)) + mean
        img = img + rng.uniform(-c.brightness, c.brightness) * 255.0
        img = np.clip(img, 0.0, 255.0)
        img = 255.0 * (img / 255.0) ** np.exp(rng.uniform(-c.gamma, c.gamma))
    if rng.random() < c.blur_p:
        sigma = rng.uniform(0.5, 1.2) * size / 64
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if rng.random() < c.noise_p:
        img = img + rng.normal(0.0, rng.uniform(2.0, 8.0), img.shape).astype(np.float32)
    if rng.random() < c.grey_p:
        grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
        img = np.repeat(grey[:, :, None], 3, axis=2)
    return np.clip(img, 0.0, 255.0)
