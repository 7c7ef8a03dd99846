"""Motion gate: skip face detection on frames where nothing moved.

An empty doorway is the common case, and detecting faces on every frame of it is most of
the daemon's idle CPU. The gate compares a small grey copy of each frame (``WIDTH`` px wide,
area-averaged then blurred, so sensor noise averages out) with the copy of the last frame
that *was* detected: when fewer than ``threshold`` of its pixels changed by more than
``PIXEL_LEVEL`` grey levels, detection is skipped.

Comparing with the last detected frame rather than the previous one means a slow walk
still adds up to a change. Three things make it detect anyway, so nothing is lost:
  * every ``detect_every_s`` seconds (a face that came in with a change too small to see
    at this scale, say small and in a dark scene, is found within that time);
  * while a track is alive (a person standing still in front of the camera, whose face
    moves too little to pass the gate, stays tracked and decided on every frame);
  * the first frame, and any frame whose size differs from the reference.
The trade-off: a face that appears with less change than the threshold (a small face
far away, in a dark scene) waits for the periodic detection, up to ``detect_every_s``.
The default is 2 s: none of the door benchmark's 108 visits (small, dark and side-lit ones
too) waited for it (the same visits, events and latencies with 1 s), and on an empty doorway
it is most of what the gated daemon still spends on detection (docs/BENCHMARKS.md, "Idle
CPU").

Idle rate: once nothing has moved (and no track was alive) for ``IDLE_AFTER_S``, the gate is
:meth:`~MotionGate.idle` and the daemon asks the camera for every ``motion.idle_stride``-th
frame only (edge/daemon/grabber.py), so an empty doorway also costs fewer frame decodes and
gate checks. The first changed frame ends it: a person walking in is seen at most
``idle_stride - 1`` frames later (one frame at the default 2).
"""

from __future__ import annotations

import cv2
import numpy as np

WIDTH = 64  # small copy's width: a 40 px face of a 640 px frame is still 4x4 pixels here
PIXEL_LEVEL = 12  # a pixel of the small copy "changed" when it differs by more grey levels
IDLE_AFTER_S = 1.0  # nothing moved for this long: the gate is idle


def small_grey(image: np.ndarray) -> np.ndarray:
    """``image`` (BGR or grey) as a blurred grey copy ``WIDTH`` pixels wide, int16."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return cv2.GaussianBlur(small, (3, 3), 0).astype(np.int16)


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels of two small grey copies that differ by more than PIXEL_LEVEL."""
    return float(np.count_nonzero(np.abs(a - b) > PIXEL_LEVEL)) / a.size


class MotionGate:
    """Decides per frame whether to run face detection (see the module docstring)."""

    def __init__(self, threshold: float, detect_every_s: float) -> None:
        self.threshold = threshold
        self.detect_every_s = detect_every_s
        self._reference: np.ndarray | None = None
        self._detected_at = float("-inf")
        self._active_at = float("-inf")  # the last frame that moved, or had a track

    def idle(self, now: float) -> bool:
        """True when nothing moved and no track was alive for ``IDLE_AFTER_S`` up to ``now``."""
        return now - self._active_at >= IDLE_AFTER_S

    def should_detect(self, image: np.ndarray, now: float, tracking: bool) -> bool:
        """True when ``image`` (captured at ``now``, seconds) should go to the detector.

        ``tracking``: a track is alive (faces were seen in the last frames)."""
        small = small_grey(image)
        ref = self._reference
        active = (
            tracking
            or ref is None
            or ref.shape != small.shape
            or changed_fraction(small, ref) >= self.threshold
        )
        if active:
            self._active_at = now
        detect = active or now - self._detected_at >= self.detect_every_s
        if detect:
            self._reference = small
            self._detected_at = now
        return detect
