"""The daemon: grabber -> recognizer -> tracker -> decider -> sink (outbox/MQTT or stdout).

Single-threaded recognition loop; the grabber and the MQTT network/delivery threads are
the only other threads. Signals only set flags: SIGTERM/SIGINT stop (tracks are closed,
the outbox flushed, ``offline`` published), SIGHUP reloads the gallery between frames, and
so does a change of the gallery file (polled every 2 s, so ``edge enroll`` takes effect
without a signal). A gallery made by another model is re-embedded from its stored face crops
(``edge.gallery.load_gallery_for_model``). A missing or corrupt gallery, or another model's
without crops, does not stop the daemon: it logs the error once, reports it in the state topic
(``gallery_error``), treats every face as unknown, and loads the file as soon as it is
fixed -- a restart loop would help nobody.

The systemd watchdog is fed only while the loop iterates *and* the grabber shows
progress (frames or retry steps), so a hung camera read or a stuck loop gets restarted,
while an unplugged camera being retried does not.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from edge.daemon.config import Config
from edge.daemon.decide import Decider
from edge.daemon.events import Decision, build_event, iso
from edge.daemon.grabber import FrameGrabber, Grabber
from edge.daemon.motion import MotionGate
from edge.daemon.sdnotify import Notifier
from edge.daemon.sinks import Sink, sink_from_config
from edge.daemon.snapshot import Snapshots
from edge.daemon.tracker import Tracker
from edge.errors import DoorfaceError

if TYPE_CHECKING:  # the pipeline imports OpenCV and LiteRT: only when a recognizer is built
    import numpy as np

    from edge.matching import Match
    from edge.pipeline import Recognizer

log = logging.getLogger(__name__)

STALL_S = 20.0  # grabber silent longer than this = hung (WatchdogSec must exceed it)
STATE_EVERY_S = 60.0
GALLERY_POLL_S = 2.0


class Observer(Protocol):
    """Sees every frame with its faces, and every event with its decision: the web app's
    hook (edge/web/recorder.py). Called on the loop's thread, so it must return at once."""

    def frame(self, frame: Any, results: list) -> None: ...

    def event(self, ev: dict[str, Any], decision: Decision) -> None: ...


def _file_signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def recognizer_from_config(cfg: Config) -> Recognizer:
    """The recognizer the config describes, with an empty gallery (the daemon loads it)."""
    from edge.pipeline import recognizer_from_files

    r = cfg.recognition
    return recognizer_from_files(
        r.model or None,
        None,  # the daemon loads (and watches) the gallery itself
        cfg.detector,
        threads=r.threads,
        threshold=None if r.threshold < 0 else r.threshold,
        margin=r.margin,
        max_faces=r.max_faces,
        flip=r.flip,
        exposure=r.exposure,
        zoom=r.zoom,
    )


class Daemon:
    def __init__(
        self,
        cfg: Config,
        recognizer: Recognizer | None = None,
        sink: Sink | None = None,
        grabber: FrameGrabber | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.cfg = cfg
        self.observer = observer
        self.gallery_error = ""
        self._gallery_sig: tuple[int, int] | None = None
        self._gallery_polled = time.monotonic()
        self.errors = 0
        self.recognizer = recognizer if recognizer is not None else recognizer_from_config(cfg)
        if recognizer is None:
            self.reload_gallery()
        self.sink = sink if sink is not None else sink_from_config(cfg)
        c = cfg.camera
        self.grabber: FrameGrabber = grabber or Grabber(
            c.source,
            fps=c.fps,
            retry_initial_s=c.retry_initial_s,
            retry_max_s=c.retry_max_s,
            exit_on_end=c.exit_on_end,
        )
        self.tracker = Tracker(cfg.tracking.iou, cfg.tracking.max_missed_frames)
        m = cfg.motion
        self.motion = MotionGate(m.threshold, m.detect_every_s) if m.enabled else None
        self.decider = Decider(
            cfg.tracking, cfg.cooldown, self._match_track, self.recognizer.matcher.scoring
        )
        s = cfg.snapshot
        self.snapshots = Snapshots(
            s.directory,
            save=s.enabled,
            in_event=s.in_event,
            max_bytes=s.max_bytes,
            max_side=s.max_side,
            keep=s.keep,
        )
        self.notifier = Notifier()
        self.stop_event = threading.Event()
        self._reload = threading.Event()
        self.events_sent = 0
        self.frames = 0
        self.frames_gated = 0  # frames the motion gate kept from the detector
        self.last_person: str | None = None
        self.last_event_id: str | None = None
        self._last_face = 0.0
        self._present = False
        self._state_at = 0.0

    def _match_track(self, embedding: np.ndarray) -> Match:
        """A track's embedding against the gallery loaded now (it changes on reload)."""
        return self.recognizer.matcher.match(embedding)

    @property
    def model_id(self) -> str:
        return str(getattr(getattr(self.recognizer, "embedder", None), "model_id", "unknown"))

    # -- signals ---------------------------------------------------------------------------
    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def reload_gallery(self) -> None:
        """(Re)load the gallery file; on failure keep the current one and report why."""
        from edge.gallery import load_gallery_for_model

        path = self.cfg.recognition.gallery
        self._gallery_sig = _file_signature(path)
        old = self.recognizer.matcher
        try:
            gallery = load_gallery_for_model(path, self.recognizer.embedder)  # re-embeds
            self.recognizer.set_matcher(old.with_gallery(gallery))
        except DoorfaceError as e:
            self.errors += 1
            self.gallery_error = str(e)
            if old.people:
                log.error(
                    "gallery reload failed, keeping the %d people loaded: %s", len(old.people), e
                )
            else:
                log.error("no usable gallery, every face is unknown until it is fixed: %s", e)
            return
        self.gallery_error = ""
        log.info("gallery loaded: %d people (%s)", len(gallery.people), ", ".join(gallery.people))

    def _gallery_changed(self, now_m: float) -> bool:
        if now_m - self._gallery_polled < GALLERY_POLL_S:
            return False
        self._gallery_polled = now_m
        return _file_signature(self.cfg.recognition.gallery) != self._gallery_sig

    # -- main loop -------------------------------------------------------------------------
    def run(self) -> int:
        self.sink.start()
        self.grabber.start()
        self.notifier.ready()
        self.notifier.status("running")
        log.info("doorface daemon running on %s", self.cfg.camera.source)
        wd = Notifier.watchdog_interval() if self.cfg.daemon.watchdog else None
        last_wd = 0.0
        try:
            while not self.stop_event.is_set():
                if self._reload.is_set() or self._gallery_changed(time.monotonic()):
                    self._reload.clear()
                    self.reload_gallery()
                frame = self.grabber.get(timeout=0.25)
                now_m = time.monotonic()
                if wd and now_m - last_wd >= wd and now_m - self.grabber.heartbeat < STALL_S:
                    self.notifier.watchdog()
                    last_wd = now_m
                if frame is None:
                    if self.grabber.ended:
                        log.info("source ended: stopping")
                        break
                    self._idle(time.time())
                    continue
                try:
                    self.handle_frame(frame)
                except DoorfaceError as e:
                    self.errors += 1
                    log.error("frame %d failed: %s", frame.index, e)
        finally:
            self.shutdown()
        return 0

    def handle_frame(self, frame) -> list[Decision]:
        """One frame through recognizer, tracker and decider; publishes and returns decisions."""
        self.frames += 1
        decisions_before = self.decider.decisions
        if self._gated(frame):
            self.frames_gated += 1
            if self.observer is not None:
                self.observer.frame(frame, [])
            self._update_state(time.time())
            return []
        results = self.recognizer.recognize_faces(frame.image, frame.detect_image)
        if self.observer is not None:
            self.observer.frame(frame, results)
        now = time.time()
        boxes = [tuple(int(v) for v in r.face.box) for r in results]
        tracks, ended = self.tracker.update(boxes, frame.timestamp)
        out: list[Decision] = []
        for r, track in zip(results, tracks, strict=True):
            d = self.decider.observe(track, self.decider.sample_from(r, frame.timestamp), now)
            if d is not None:
                out.append(d)
        for track in ended:
            d = self.decider.end(track, now)
            if d is not None:
                out.append(d)
        if results:
            self._last_face = now
        for d in out:
            self.emit(d)
        self._update_state(now, force=self.decider.decisions != decisions_before)
        return out

    def _gated(self, frame) -> bool:
        """True when the motion gate skips this frame: nothing moved and no track is alive
        (so the tracker and decider, which only act on tracks, miss nothing)."""
        if self.motion is None:
            return False
        image = frame.detect_image if frame.detect_image is not None else frame.image
        detect = self.motion.should_detect(image, frame.timestamp, bool(self.tracker.tracks))
        idle = self.motion.idle(frame.timestamp)
        self.grabber.stride = self.cfg.motion.idle_stride if idle else 1
        return not detect

    def _idle(self, now: float) -> None:
        self._update_state(now)

    def emit(self, d: Decision) -> dict:
        ev = build_event(
            d,
            device_id=self.cfg.daemon.device_id,
            camera=self.cfg.camera.name,
            model_id=self.model_id,
            confidence=self.recognizer.matcher.confidence_of(d.score),
        )
        b64 = self.snapshots.handle(ev["id"], d.snapshot)
        if b64 is not None:
            ev["snapshot_jpeg_b64"] = b64
        self.sink.send_event(ev)
        if self.observer is not None:
            self.observer.event(ev, d)
        self.events_sent += 1
        self.last_event_id = ev["id"]
        self.last_person = d.person if d.person is not None else "unknown"
        log.info(
            "event %s%s %s score=%.3f track=%d visit=%s",
            d.type,
            " (upgrade)" if d.upgrade else "",
            d.person,
            d.score,
            d.track_id,
            d.visit_id,
        )
        return ev

    def _update_state(self, now: float, force: bool = False) -> None:
        present = now - self._last_face < self.cfg.tracking.present_off_s
        if not force and present == self._present and now - self._state_at < STATE_EVERY_S:
            return
        self._present = present
        self._state_at = now
        state = {
            "present": "ON" if present else "OFF",
            "last_person": self.last_person,
            "last_event_id": self.last_event_id,
            "updated": iso(now),
            "frames": self.frames,
            "frames_gated": self.frames_gated,
            "dropped_frames": self.grabber.dropped,
            "empty_frames": self.grabber.empty,
            "idle_skipped_frames": self.grabber.skipped,
            "camera_failures": self.grabber.failures,
            "events": self.events_sent,
            "errors": self.errors,
            "gallery_people": len(self.recognizer.matcher.people),
            "gallery_error": self.gallery_error,
            **{f"decider_{k}": v for k, v in self.decider.counters.items()},
            **self.sink.stats(),
        }
        self.sink.set_state(state)
        self.notifier.status(
            f"frames={self.frames} dropped={self.grabber.dropped} events={self.events_sent} "
            f"camera={'ok' if not self.grabber.error else self.grabber.error}"
        )

    def shutdown(self) -> None:
        self.notifier.stopping()
        self.grabber.stop()
        now = time.time()
        for track in self.tracker.flush():
            d = self.decider.end(track, now)
            if d is not None:
                self.emit(d)
        self._last_face = 0.0
        self._update_state(now, force=True)
        self.sink.stop(timeout=5.0)
        log.info(
            "stopped: %d frames (%d skipped by the motion gate), %d dropped, %d events",
            self.frames,
            self.frames_gated,
            self.grabber.dropped,
            self.events_sent,
        )
