"""The daemon's hook into the web app: each frame to the Live view, each event to the visits.

Both calls run on the daemon's recognition thread and cost it next to nothing: a frame is a
reference handed to :class:`~edge.web.live.LiveView`; an event and its decisive face crop
are put on a bounded queue. A thread of its own embeds the crop (with the web app's
embedder, not the daemon's) and writes the visit, so a slow SD card never delays a
recognition or an MQTT event. A full queue (the disk stalled) drops visits, counted and
logged; it never blocks the daemon. When idle the thread purges visits past retention.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import DoorfaceError
from edge.gallery import resized_crops
from edge.web.library import FaceLibrary, png_bytes
from edge.web.live import LiveFace, LiveView
from edge.web.visits import PURGE_EVERY_S, VisitStore

if TYPE_CHECKING:
    from edge.daemon.events import Decision
    from edge.pipeline import FaceResult
    from edge.sources import Frame

log = logging.getLogger(__name__)

QUEUE_MAX = 256


class VisitRecorder:
    def __init__(self, live: LiveView, visits: VisitStore, library: FaceLibrary) -> None:
        self.live = live
        self.visits = visits
        self.library = library
        self.recorded = 0
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[dict, np.ndarray] | None] = queue.Queue(QUEUE_MAX)
        self._thread = threading.Thread(target=self._run, name="web-visits", daemon=True)

    # -- called by the daemon --------------------------------------------------------------
    def frame(self, frame: Frame, results: list[FaceResult]) -> None:
        faces = [
            LiveFace(tuple(int(v) for v in r.face.box), r.match.name, float(r.match.score))
            for r in results
        ]
        self.live.update(frame.image, faces, frame.timestamp)

    def event(self, ev: dict[str, Any], decision: Decision) -> None:
        if decision.snapshot is None:
            return
        try:
            self._queue.put_nowait((ev, decision.snapshot))
        except queue.Full:
            self.dropped += 1
            log.warning("web: visit %s not recorded (queue full)", ev.get("visit_id"))

    # -- the recording thread --------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Record what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=PURGE_EVERY_S)
            except queue.Empty:
                self.visits.maybe_purge()
                continue
            if item is None:
                return
            try:
                self.record(*item)
            except (DoorfaceError, sqlite3.Error, OSError, ValueError, KeyError) as exc:
                self.failed += 1
                log.error("web: visit %s not recorded: %s", item[0].get("visit_id"), exc)

    def record(self, ev: dict[str, Any], crop: np.ndarray) -> None:
        """Embed the decisive face and store the visit."""
        size = self.library.recognizer.embedder.input_size
        if crop.shape[:2] != (size, size):
            crop = resized_crops(crop[None], size)[0]
        embedding = self.library.embed(crop[None])[0]
        self.visits.record(ev, ev.get("confidence"), png_bytes(crop), embedding)
        self.recorded += 1
