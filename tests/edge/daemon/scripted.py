"""Synthetic faces for decision tests: embeddings on known axes, a real Matcher over them.

A face "is" a unit vector; ``view(person, cos, noise)`` is a view of that person whose cosine to
the person's template is exactly ``cos`` (the rest points along a noise axis). The matcher is
the real one (threshold 0.5, margin 0.05) over a gallery of ALICE and BOB, so decisions in
these tests go through the same matching, aggregation and cooldown code as on the device.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edge.gallery import Gallery
from edge.matching import Matcher
from edge.scoring import Scoring

DIM = 32
THRESHOLD = 0.5


def axis(i: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = 1.0
    return v


ALICE, BOB = axis(0), axis(1)
NOISE = [axis(i) for i in range(2, 12)]  # per-frame view noise (pose, light)


def stranger(i: int) -> np.ndarray:
    """A stranger's face: unrelated to everyone enrolled and to every other stranger."""
    return axis(12 + i)


def view(face: np.ndarray, cos: float, noise: int = 0) -> np.ndarray:
    """A unit embedding with cosine ``cos`` to ``face``, the rest along noise axis ``noise``."""
    v = cos * face + math.sqrt(max(0.0, 1 - cos * cos)) * NOISE[noise % len(NOISE)]
    return (v / np.linalg.norm(v)).astype(np.float32)


def matcher() -> Matcher:
    """The real Matcher over an in-memory gallery of one template each for alice and bob."""
    names, templates = np.array(["alice", "bob"]), np.stack([ALICE, BOB])
    gallery = Gallery(Path("synthetic.npz"), "synthetic", 8, DIM, names, templates)
    return Matcher(gallery, Scoring(THRESHOLD), 0.05)


def face(m: Matcher, box, embedding: np.ndarray, sharp: float = 100.0) -> SimpleNamespace:
    """A FaceResult-like object: what the recognizer returns for one face."""
    return SimpleNamespace(
        face=SimpleNamespace(box=box),
        match=m.match(embedding),
        embedding=embedding,
        sharpness=sharp,
        crop=np.zeros((8, 8, 3), np.uint8),
    )


def walk(m: Matcher, embeddings, x0: int = 100, size: int = 80, sharp: float = 100.0):
    """One face per frame moving 4 px a frame: a track showing ``embeddings`` in turn."""
    return [[face(m, (x0 + 4 * i, 100, size, size), e, sharp)] for i, e in enumerate(embeddings)]


class ScriptedRecognizer:
    """Stands in for detection + embedding in a real Daemon: each ``recognize_faces`` call
    returns the next scripted frame's faces; ``matcher`` is the real synthetic one."""

    def __init__(self, m: Matcher) -> None:
        self.matcher = m
        self.frames: deque[list[SimpleNamespace]] = deque()

    def recognize_faces(self, image, detect_image=None) -> list[SimpleNamespace]:
        return self.frames.popleft()
