"""JPEG snapshot of the decisive face: saved locally (pruned) and/or base64 in the event.

The crop is the aligned face (small), downscaled to ``max_side`` and re-encoded at lower
quality until it fits ``max_bytes``, so an event never carries more than that (MQTT
brokers and HA handle small payloads best; the default 64 KiB is far below limits).
"""

from __future__ import annotations

import base64
import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: The files :class:`Snapshots` writes (``<event id>.jpg``, a UUID): the only ones it prunes,
#: so photos of one's own in the same folder are never deleted.
OWN_FILE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jpg")


def encode_jpeg(rgb: np.ndarray, max_side: int = 320, max_bytes: int = 65536) -> bytes | None:
    """JPEG bytes of an RGB image no larger than ``max_bytes``, or None if it cannot fit."""
    img = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    while True:
        if scale < 1.0:
            img_s = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))))
        else:
            img_s = img
        for quality in (90, 75, 60, 45, 30):
            ok, buf = cv2.imencode(".jpg", img_s, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and len(buf) <= max_bytes:
                return buf.tobytes()
        if max(img_s.shape[:2]) <= 16:
            return None
        scale *= 0.5


class Snapshots:
    def __init__(
        self,
        directory: str,
        *,
        save: bool,
        in_event: bool,
        max_bytes: int,
        max_side: int,
        keep: int,
    ) -> None:
        self.directory = Path(directory)
        self.save = save
        self.in_event = in_event
        self.max_bytes = max_bytes
        self.max_side = max_side
        self.keep = keep
        self.errors = 0

    def handle(self, event_id: str, rgb: np.ndarray | None) -> str | None:
        """Save the snapshot if enabled; return base64 for the event if enabled."""
        if rgb is None or not (self.save or self.in_event):
            return None
        data = encode_jpeg(rgb, self.max_side, self.max_bytes)
        if data is None:
            return None
        if self.save:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                tmp = self.directory / f".{event_id}.jpg.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, self.directory / f"{event_id}.jpg")
                self._prune()
            except OSError as e:  # a full disk must not stop events
                self.errors += 1
                log.error("snapshot not saved: %s", e)
        return base64.b64encode(data).decode("ascii") if self.in_event else None

    def _prune(self) -> None:
        """Delete the oldest of our own snapshots beyond ``keep`` (at least the newest stays)."""
        files = sorted(
            (p for p in self.directory.glob("*.jpg") if OWN_FILE.fullmatch(p.name)),
            key=lambda p: p.stat().st_mtime,
        )
        for old in files[: max(0, len(files) - max(1, self.keep))]:
            old.unlink(missing_ok=True)
