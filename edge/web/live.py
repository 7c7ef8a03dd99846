"""The Live page's picture: the daemon's latest frame with boxes and names, as a JPEG.

Light on the daemon: per frame it only stores a reference to the frame (sources hand over a
new array each frame, and nobody writes into it) and a short list of boxes; drawing and
encoding happen in a web thread, only when a page asks, at most once per frame however many
pages are open, on a copy scaled to at most ``max_width``. The Live page asks once a second
(periodic JPEG rather than MJPEG: a phone that sleeps or a tab in the background costs
nothing, and one request is one frame). With no page open the cost is that reference.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

GREEN, ORANGE = (80, 200, 60), (0, 140, 255)  # BGR: named, unknown


@dataclass(frozen=True)
class LiveFace:
    box: tuple[int, int, int, int]
    name: str | None
    score: float


class LiveView:
    def __init__(self, max_width: int = 640, quality: int = 70) -> None:
        self.max_width = max_width
        self.quality = quality
        self.frames = 0
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._faces: list[LiveFace] = []
        self._at = 0.0  # wall-clock time of the frame
        self._times: deque[float] = deque(maxlen=60)  # monotonic arrival of recent frames
        self._jpeg: tuple[int, bytes] | None = None  # (frame number, its JPEG)

    def update(self, image: np.ndarray, faces: list[LiveFace], timestamp: float) -> None:
        """Called by the daemon for every frame: O(1), no copy."""
        with self._lock:
            self._image, self._faces, self._at = image, faces, timestamp
            self.frames += 1
            self._times.append(time.monotonic())

    def latest(self) -> tuple[np.ndarray, float] | None:
        """(frame, capture time) of the newest frame, or None before the first."""
        with self._lock:
            return None if self._image is None else (self._image, self._at)

    def jpeg(self) -> bytes | None:
        """The newest frame, annotated, as JPEG bytes; None before the first frame."""
        with self._lock:
            image, faces, number, cached = self._image, self._faces, self.frames, self._jpeg
        if image is None:
            return None
        if cached is not None and cached[0] == number:
            return cached[1]
        data = annotated_jpeg(image, faces, self.max_width, self.quality)
        with self._lock:
            self._jpeg = (number, data)
        return data

    def status(self) -> dict:
        with self._lock:
            times, at, frames = list(self._times), self._at, self.frames
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        if times and time.monotonic() - times[-1] > 5.0:
            fps = 0.0  # the camera stopped
        return {"frames": frames, "fps": round(fps, 2), "last_frame": at or None}


def annotated_jpeg(
    image: np.ndarray, faces: list[LiveFace], max_width: int = 640, quality: int = 80
) -> bytes:
    """``image`` (BGR) scaled to at most ``max_width`` wide, boxes and names drawn, as JPEG."""
    scale = min(1.0, max_width / image.shape[1])
    out = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if scale < 1.0
        else image.copy()
    )
    for f in faces:
        x, y, w, h = (round(float(v) * scale) for v in f.box)
        color = GREEN if f.name else ORANGE
        label = f"{f.name or 'unknown'} {f.score:.2f}"
        cv2.rectangle(out, (x, y), (x + w, y + h), color, 2)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y - th - 6)
        cv2.rectangle(out, (x, top), (x + tw + 6, top + th + 6), color, -1)
        cv2.putText(out, label, (x + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else b""
