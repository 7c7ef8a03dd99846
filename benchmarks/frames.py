"""Door-camera-like test frames from LFW: one real face pasted on a 640x480 scene."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
LFW = SHARED / "data" / "lfw"
YUNET = SHARED / "models" / "yunet" / "face_detection_yunet_2026may.onnx"


def lfw_files(n: int, seed: int = 0) -> list[Path]:
    files = sorted(LFW.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"{LFW}: LFW not found (benchmarks read ../shared/data)")
    return random.Random(seed).sample(files, min(n, len(files)))


def scene(rng: np.random.Generator, width: int = 640, height: int = 480) -> np.ndarray:
    """A smooth, door-like background: gradients plus blurred texture."""
    base = rng.uniform(60, 200, size=(6, 8, 3)).astype(np.float32)
    image = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(
        rng.normal(0, 25, size=(height, width, 3)).astype(np.float32), (0, 0), 3
    )
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def door_frames(
    n: int, seed: int = 0, face_scale: tuple[float, float] = (1.0, 1.6)
) -> list[np.ndarray]:
    """``n`` 640x480 BGR frames, each with one LFW photo (face ~110-180 px) at a random place."""
    rng = np.random.default_rng(seed)
    frames = []
    for path in lfw_files(n, seed):
        frame = scene(rng)
        photo = cv2.imread(str(path))
        side = int(250 * rng.uniform(*face_scale))
        photo = cv2.resize(photo, (side, side), interpolation=cv2.INTER_LINEAR)
        # feather the photo's edges so the detector sees a face, not a pasted square
        mask = np.zeros((side, side), np.float32)
        cv2.ellipse(
            mask, (side // 2, side // 2), (int(side * 0.36), int(side * 0.46)), 0, 0, 360, 1.0, -1
        )
        mask = cv2.GaussianBlur(mask, (0, 0), side * 0.04)[..., None]
        x = int(rng.integers(0, 640 - side))
        y = int(rng.integers(0, 480 - side))
        roi = frame[y : y + side, x : x + side].astype(np.float32)
        frame[y : y + side, x : x + side] = (roi * (1 - mask) + photo * mask).astype(np.uint8)
        frames.append(frame)
    return frames
