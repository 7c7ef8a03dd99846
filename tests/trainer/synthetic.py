"""Generated "identities" for fast training tests: each person is a random smooth colour
texture with a few shapes; their images are that pattern with jitter, exposure and noise."""

from __future__ import annotations

import cv2
import numpy as np

from trainer.data import FaceSet


def person_pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    base = cv2.resize(rng.uniform(0, 255, (4, 4, 3)).astype(np.float32), (size, size))
    for _ in range(3):
        c = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        cv2.circle(base, c, int(rng.integers(3, size // 4)), colour, -1)
    return base


def sample(pattern: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = pattern.shape[0]
    m = np.float32([[1, 0, rng.uniform(-2, 2)], [0, 1, rng.uniform(-2, 2)]])
    img = cv2.warpAffine(pattern, m, (size, size), borderMode=cv2.BORDER_REFLECT)
    img = img * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20) + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_faces(
    people: int, per_person: int, size: int = 32, seed: int = 0
) -> tuple[FaceSet, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    patterns = [person_pattern(rng, size) for _ in range(people)]
    crops = np.stack([sample(p, rng) for p in patterns for _ in range(per_person)])
    labels = np.repeat(np.arange(people), per_person)
    faces = FaceSet(
        crops=crops,
        labels=labels,
        names=[f"p{i}" for i in range(people)],
        paths=[f"p{i // per_person}/{i}.png" for i in range(len(labels))],
        boxes=np.zeros((len(labels), 4), np.float32),
    )
    return faces, patterns
