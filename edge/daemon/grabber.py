"""Grabber thread: reads the camera continuously and keeps only the newest frame.

Recognition is slower than the camera on a Pi, so queueing frames would make latency
grow without bound; instead a newer frame overwrites an unconsumed one (counted in
``dropped``). Files and videos are not live: by default every frame is handed over
(the reader waits for the consumer), or paced at ``fps`` to simulate a camera.

``stride`` (set by the daemon while the motion gate sees an empty doorway) asks the source to
deliver only every ``stride``-th frame and skip the rest as cheaply as it can; frames in
between are counted in ``skipped``. It applies to cameras and paced files, never to files
handed over frame by frame (those are processed whole).

A source that fails (SourceError, unplugged camera, stream that ends) is re-opened with
exponential backoff; ``heartbeat`` advances on every frame and every retry step so the
systemd watchdog can tell "camera retrying" (healthy) from "read() hung" (restart).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from edge.errors import DoorfaceError
from edge.sources import Frame, FrameSource, open_source

log = logging.getLogger(__name__)


class FrameGrabber(Protocol):
    """What the daemon needs of its frame reader: :class:`Grabber` (a camera, stream or file
    read on a thread), or :class:`HandFed` where the caller hands frames to
    ``Daemon.handle_frame`` itself. The counters feed the state topic."""

    dropped: int  # overwritten before the daemon took them
    empty: int  # empty images the source returned
    skipped: int  # not read at all: the idle rate (``stride``)
    failures: int  # times the source failed and was re-opened
    error: str  # the last failure, "" while healthy
    heartbeat: float  # time.monotonic() of the last sign of life (the watchdog reads it)
    ended: bool  # a file source ended and there is nothing more to read
    stride: int  # deliver every stride-th frame (set by the motion gate)

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def get(self, timeout: float = 0.5) -> Frame | None: ...


class HandFed:
    """The frame reader of a daemon whose caller hands it frames itself (``edge demo``, tests):
    nothing to read, so ``Daemon.run`` would stop at once; the counters stay at zero."""

    def __init__(self) -> None:
        self.dropped = self.empty = self.skipped = self.failures = 0
        self.error = ""
        self.heartbeat = time.monotonic()
        self.ended = True
        self.stride = 1

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def get(self, timeout: float = 0.5) -> Frame | None:
        return None


class Grabber:
    """Reads ``spec`` (see :func:`edge.sources.open_source`) on its own thread; the
    :class:`FrameGrabber` every daemon that reads a camera uses."""

    def __init__(
        self,
        spec: str,
        *,
        opener: Callable[[str], FrameSource] = open_source,
        fps: float = 0.0,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        exit_on_end: bool = False,
    ) -> None:
        self.spec = spec
        self.opener = opener
        self.fps = fps
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.exit_on_end = exit_on_end
        self.frames = 0
        self.dropped = 0
        self.empty = 0
        self.skipped = 0
        self._stride = 1
        self._source: FrameSource | None = None  # the one being read, when it may skip frames
        self.failures = 0
        self.reopens = 0
        self.ended = False  # a file source ended and exit_on_end is set
        self.error = ""
        self.heartbeat = time.monotonic()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grabber", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)

    @property
    def stride(self) -> int:
        return self._stride

    @stride.setter
    def stride(self, value: int) -> None:
        """Passed on at once: the source reads it when its next frame arrives."""
        self._stride = value
        source = self._source
        if source is not None:
            source.stride = value

    def get(self, timeout: float = 0.5) -> Frame | None:
        """The newest frame not yet taken, or None after ``timeout``."""
        with self._cond:
            if self._latest is None:
                self._cond.wait(timeout)
            frame, self._latest = self._latest, None
            self._cond.notify_all()
            return frame

    # -- reader thread ---------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            self.heartbeat = time.monotonic()
            self._stop.wait(min(1.0, end - time.monotonic()))

    def _run(self) -> None:
        delay = self.retry_initial_s
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                with self.opener(self.spec) as source:
                    got = self._read(source)
                if self._stop.is_set():
                    return
                if not source.live and self.exit_on_end:
                    log.info("source %s ended", self.spec)
                    self.ended = True
                    with self._cond:
                        self._cond.notify_all()
                    return
                self.error = "source ended"
                log.warning("source %s ended; re-opening in %.1fs", self.spec, delay)
                if got:
                    delay = self.retry_initial_s
            except DoorfaceError as e:
                self.error = str(e)
                log.error("camera %s failed: %s; retrying in %.1fs", self.spec, e, delay)
            except Exception as e:  # a driver raising something unexpected: still retry
                self.error = f"{type(e).__name__}: {e}"
                log.exception("camera %s crashed; retrying in %.1fs", self.spec, delay)
            self.failures += 1
            self._sleep(delay)
            delay = min(self.retry_max_s, delay * 2)
            self.reopens += 1

    def _read(self, source: FrameSource) -> int:
        got = 0
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        if source.live or period > 0:
            source.stride = self._stride
            self._source = source
        start = time.monotonic()
        last_index = -1
        frames = iter(source)
        while True:
            if not source.live and period and last_index >= 0:
                # the next frame "arrives" when it is due, as a camera's would: the source then
                # decides whether to skip it with the stride the daemon has set by that time
                self._stop.wait(max(0.0, start + (last_index + 2) * period - time.monotonic()))
            frame = next(frames, None)
            if frame is None or self._stop.is_set():
                break
            self.heartbeat = time.monotonic()
            self.skipped += max(0, frame.index - last_index - 1)
            last_index = frame.index
            img = frame.image
            if not isinstance(img, np.ndarray) or img.size == 0 or img.ndim != 3:
                self.empty += 1
                if self.empty % 100 == 1:
                    log.warning("camera returned an empty frame (%d so far)", self.empty)
                continue
            got += 1
            self.frames += 1
            if not source.live and period:  # frame i of a paced file is due at (i + 1) periods
                wait = start + (frame.index + 1) * period - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                frame.timestamp = time.time()
            with self._cond:
                if not source.live and not period:
                    while self._latest is not None and not self._stop.is_set():
                        self._cond.wait(0.5)
                        self.heartbeat = time.monotonic()
                if self._latest is not None:
                    self.dropped += 1
                self._latest = frame
                self._cond.notify_all()
        self._source = None
        return got
