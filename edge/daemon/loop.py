"""The daemon: grabber -> recognizer -> tracker -> decider -> outbox/MQTT (or stdout).

Single-threaded recognition loop; the grabber and the MQTT network/delivery threads are
the only other threads. Signals only set flags: SIGTERM/SIGINT stop (tracks are closed,
the outbox flushed, ``offline`` published), SIGHUP reloads the gallery between frames, and
so does a change of the gallery file (polled every 2 s, so ``edge enroll`` takes effect
without a signal). A missing, corrupt or wrong-model gallery does not stop the daemon: it
logs the error once, reports it in the state topic (``gallery_error``), treats every face as
unknown, and loads the file as soon as it is fixed -- a restart loop would help nobody.

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
from typing import Any

from edge import __version__ as EDGE_VERSION
from edge.daemon.config import Config
from edge.daemon.decide import Decider
from edge.daemon.events import Decision, StdoutSink, build_event, iso
from edge.daemon.grabber import Grabber
from edge.daemon.sdnotify import Notifier
from edge.daemon.snapshot import Snapshots
from edge.daemon.tracker import Tracker
from edge.errors import DoorfaceError

log = logging.getLogger(__name__)

STALL_S = 20.0  # grabber silent longer than this = hung (WatchdogSec must exceed it)
STATE_EVERY_S = 60.0
GALLERY_POLL_S = 2.0


def _file_signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def build_recognizer(cfg: Config):
    """The core recognizer from the config, with an empty gallery (imports LiteRT lazily)."""
    from edge.pipeline import build_recognizer as core_build

    r = cfg.recognition
    options: dict[str, Any] = {}
    if r.detector_model:
        options["model_path"] = r.detector_model
    if r.detect_width >= 0:
        options["detect_width"] = r.detect_width
    return core_build(
        r.model or None,
        None,  # the daemon loads (and watches) the gallery itself
        r.detector,
        options,
        threads=r.threads,
        threshold=None if r.threshold < 0 else r.threshold,
        margin=r.margin,
        max_faces=r.max_faces,
    )


def build_sink(cfg: Config):
    if not cfg.mqtt.host:
        return StdoutSink()
    from edge.daemon.mqtt import MqttPublisher
    from edge.daemon.outbox import Outbox

    o = cfg.outbox
    outbox = Outbox(o.path, o.max_rows, o.memory_max, o.synchronous)
    return MqttPublisher(
        cfg.mqtt, outbox, device_id=cfg.daemon.device_id, name=cfg.daemon.name, version=EDGE_VERSION
    )


class Daemon:
    def __init__(self, cfg: Config, recognizer=None, sink=None, grabber: Grabber | None = None):
        self.cfg = cfg
        self.gallery_error = ""
        self._gallery_sig: tuple[int, int] | None = None
        self._gallery_polled = time.monotonic()
        self.errors = 0
        self.recognizer = recognizer if recognizer is not None else build_recognizer(cfg)
        if recognizer is None:
            self.reload_gallery()
        self.sink = sink if sink is not None else build_sink(cfg)
        c = cfg.camera
        self.grabber = grabber or Grabber(
            c.source,
            fps=c.fps,
            retry_initial_s=c.retry_initial_s,
            retry_max_s=c.retry_max_s,
            exit_on_end=c.exit_on_end,
        )
        t = cfg.tracking
        self.tracker = Tracker(t.iou, t.max_missed_frames)
        self.decider = Decider(
            confirm_frames=t.confirm_frames,
            unknown_frames=t.unknown_frames,
            instant_above=t.instant_above,
            min_face_px=t.min_face_px,
            min_sharpness=t.min_sharpness,
            person_cooldown_s=cfg.cooldown.person_s,
            unknown_cooldown_s=cfg.cooldown.unknown_s,
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
        self.last_person: str | None = None
        self.last_event_id: str | None = None
        self._last_face = 0.0
        self._present = False
        self._state_at = 0.0

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
        from edge.gallery import Gallery
        from edge.matching import Matcher

        path = self.cfg.recognition.gallery
        self._gallery_sig = _file_signature(path)
        old = self.recognizer.matcher
        try:
            gallery = Gallery.load(path)
            self.recognizer.set_matcher(Matcher(gallery, old.threshold, old.margin, old.strategy))
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
                    self.process(frame)
                except DoorfaceError as e:
                    self.errors += 1
                    log.error("frame %d failed: %s", frame.index, e)
        finally:
            self.shutdown()
        return 0

    def process(self, frame) -> list[Decision]:
        """One frame through recognizer, tracker and decider; returns emitted decisions."""
        self.frames += 1
        results = self.recognizer.process(frame.image, frame.detect_image)
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
        self._update_state(now, force=bool(out))
        return out

    def _idle(self, now: float) -> None:
        self._update_state(now)

    def emit(self, d: Decision) -> dict:
        ev = build_event(
            d,
            device_id=self.cfg.daemon.device_id,
            camera=self.cfg.camera.name,
            model_id=self.model_id,
        )
        b64 = self.snapshots.handle(ev["id"], d.snapshot)
        if b64 is not None:
            ev["snapshot_jpeg_b64"] = b64
        self.sink.send_event(ev)
        self.events_sent += 1
        self.last_event_id = ev["id"]
        self.last_person = d.person if d.person is not None else "unknown"
        log.info("event %s %s score=%.3f track=%d", d.type, d.person, d.score, d.track_id)
        return ev

    def _update_state(self, now: float, force: bool = False) -> None:
        present = now - self._last_face < self.cfg.mqtt.present_off_s
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
            "dropped_frames": self.grabber.dropped,
            "empty_frames": self.grabber.empty,
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
            "stopped: %d frames, %d dropped, %d events",
            self.frames,
            self.grabber.dropped,
            self.events_sent,
        )
