"""Door-camera-like test frames from LFW: one real face pasted on a 640x480 scene."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np

from edge.demo import paste, scene

SHARED = Path(__file__).resolve().parents[2] / "shared"
LFW = SHARED / "data" / "lfw"


def lfw_files(n: int, seed: int = 0) -> list[Path]:
    files = sorted(LFW.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"{LFW}: LFW not found (benchmarks read ../shared/data)")
    return random.Random(seed).sample(files, min(n, len(files)))


def door_frames(
    n: int, seed: int = 0, face_scale: tuple[float, float] = (1.0, 1.6)
) -> list[np.ndarray]:
    """``n`` 640x480 BGR frames, each with one LFW photo (face ~110-180 px) at a random place."""
    rng = np.random.default_rng(seed)
    frames = []
    for path in lfw_files(n, seed):
        frame = scene(rng)
        side = int(250 * rng.uniform(*face_scale))
        cx = rng.uniform(side / 2, 640 - side / 2)
        cy = rng.uniform(side / 2, 480 - side / 2)
        paste(frame, cv2.imread(str(path)), cx, cy, side)
        frames.append(frame)
    return frames
