"""The daemon loop in-process: gallery watch and SIGHUP reload, a bad gallery at start, a
camera that is lost and comes back, and a watchdog that is fed only while frames flow."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from edge.daemon import config, loop
from edge.daemon.grabber import Grabber, HandFed
from edge.daemon.loop import Daemon
from edge.errors import SourceError
from edge.gallery import Gallery
from edge.sources import Frame, FrameSource

from .door import config_file, video_to_frames

NO_COOLDOWN = "[cooldown]\nperson_s = 0.0\nunknown_s = 0.0\n"


class ListSink:
    """Collects what the daemon publishes (the MQTT sink is tested against mosquitto)."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.states: list[dict] = []

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> None:
        pass

    def send_event(self, ev: dict) -> None:
        self.events.append(ev)

    def set_state(self, state: dict) -> None:
        self.states.append(state)

    def stats(self) -> dict:
        return {}


def wait_until(pred: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def recognized_since(sink: ListSink, n: int, person: str) -> bool:
    return any(e["type"] == "recognized" and e["person"] == person for e in sink.events[n:])


class Running:
    """A daemon running its loop in a thread; stopped like SIGTERM would."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.thread = threading.Thread(target=daemon.run, daemon=True)

    def __enter__(self) -> Daemon:
        self.thread.start()
        return self.daemon

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop_event.set()
        self.thread.join(20)
        assert not self.thread.is_alive()


@pytest.fixture
def frames_dir(tmp_path, door_video):
    return video_to_frames(door_video["video"], tmp_path / "frames")


def test_bad_gallery_at_start_keeps_running_and_loads_the_fixed_file(
    tmp_path, door_video, frames_dir, monkeypatch
):
    monkeypatch.setattr(loop, "GALLERY_POLL_S", 0.1)
    gallery = tmp_path / "gallery.npz"
    gallery.write_bytes(b"this is not a gallery")
    door = {**door_video, "gallery": gallery}
    cfg = config.load(config_file(tmp_path, door, NO_COOLDOWN, camera=str(frames_dir)))
    sink = ListSink()
    daemon = Daemon(cfg, sink=sink)
    assert "corrupt gallery" in daemon.gallery_error and daemon.errors == 1
    with Running(daemon):
        # nobody enrolled that it can read: the astronaut is reported, as unknown
        wait_until(lambda: any(e["type"] == "unknown" for e in sink.events))
        assert not any(e["type"] == "recognized" for e in sink.events)
        wait_until(lambda: bool(sink.states))
        assert "corrupt gallery" in sink.states[-1]["gallery_error"]
        # `edge enroll` writes the gallery atomically; the daemon notices without a signal
        shutil.copy(door_video["gallery"], tmp_path / "new.npz")
        os.replace(tmp_path / "new.npz", gallery)
        n = len(sink.events)
        wait_until(lambda: recognized_since(sink, n, "astronaut"))
        assert daemon.gallery_error == ""
    assert sink.states[-1]["gallery_people"] == 1 and sink.states[-1]["gallery_error"] == ""


def test_sighup_reloads_the_gallery_and_a_bad_reload_keeps_the_old_one(
    tmp_path, door_video, frames_dir, monkeypatch
):
    monkeypatch.setattr(loop, "GALLERY_POLL_S", 1e9)  # only the signal reloads
    gallery = tmp_path / "gallery.npz"
    shutil.copy(door_video["gallery"], gallery)
    door = {**door_video, "gallery": gallery}
    cfg = config.load(config_file(tmp_path, door, NO_COOLDOWN, camera=str(frames_dir)))
    sink = ListSink()
    daemon = Daemon(cfg, sink=sink)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    daemon.install_signals()
    try:
        with Running(daemon):
            wait_until(lambda: recognized_since(sink, 0, "astronaut"))
            g = Gallery.load(gallery)
            g.rename("astronaut", "buzz")
            g.save()
            signal.raise_signal(signal.SIGHUP)
            n = len(sink.events)
            wait_until(lambda: recognized_since(sink, n, "buzz"))
            # a corrupt file on reload: logged, counted, the loaded people stay
            gallery.write_bytes(b"garbage")
            errors = daemon.errors
            signal.raise_signal(signal.SIGHUP)
            wait_until(lambda: daemon.errors == errors + 1)
            n = len(sink.events)
            wait_until(lambda: recognized_since(sink, n, "buzz"))
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# -- camera lost -------------------------------------------------------------------------
class ScriptedCamera(FrameSource):
    """A live camera that delivers ``n`` frames (some empty), then fails or hangs."""

    def __init__(self, n: int, then: str, stop: threading.Event) -> None:
        self.n, self.then, self.stop = n, then, stop

    @property
    def live(self) -> bool:
        return True

    def frames(self) -> Iterator[Frame]:
        for i in range(self.n):
            image = np.zeros((0, 0, 3), np.uint8) if i % 5 == 4 else np.zeros((48, 64, 3), np.uint8)
            yield Frame(image, time.time(), i, "scripted")
            time.sleep(0.01)
        if self.then == "unplug":
            raise SourceError("camera scripted: read failed (unplugged)")
        self.stop.wait()  # "hang": a read that never returns


def test_camera_lost_is_retried_with_backoff_and_recovers(caplog):
    stop = threading.Event()
    opens: list[int] = []

    def opener(spec: str) -> FrameSource:
        opens.append(1)
        if len(opens) == 1:
            raise SourceError("camera scripted: no such device")
        return ScriptedCamera(20, "unplug" if len(opens) == 2 else "hang", stop)

    g = Grabber("scripted", opener=opener, retry_initial_s=0.05, retry_max_s=0.2)
    g.start()
    try:
        # flowing again after 2 failures, until the third camera hangs after its 20th frame
        wait_until(lambda: len(opens) >= 3 and g.frames >= 32 and g.empty >= 8)
        assert g.get(1.0) is not None
    finally:
        stop.set()
        g.stop()
    assert g.failures == 2 and g.reopens == 2
    assert g.empty == 8 and g.frames == 32  # 2 sources x (20 - 4 empty)
    assert "no such device" in caplog.text and "unplugged" in caplog.text


def test_a_hand_fed_daemon_has_nothing_to_read_and_run_stops_at_once(tmp_path, door_video):
    cfg = config.load(config_file(tmp_path, door_video, NO_COOLDOWN, camera="unused"))
    sink = ListSink()
    daemon = Daemon(cfg, sink=sink, grabber=HandFed())
    started = time.monotonic()
    assert daemon.run() == 0
    assert time.monotonic() - started < 5.0
    last = sink.states[-1]
    assert last["frames"] == 0 and last["dropped_frames"] == last["idle_skipped_frames"] == 0


def test_watchdog_is_fed_while_frames_flow_and_starves_when_the_camera_hangs(
    tmp_path, door_video, monkeypatch
):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = str(tmp_path / "notify.sock")
    sock.bind(addr)
    sock.settimeout(0.05)
    monkeypatch.setenv("NOTIFY_SOCKET", addr)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setattr(loop, "STALL_S", 0.5)

    def drain() -> list[str]:
        out = []
        while True:
            try:
                out.append(sock.recv(4096).decode())
            except TimeoutError:
                return out

    stop = threading.Event()
    grabber = Grabber("scripted", opener=lambda s: ScriptedCamera(60, "hang", stop))
    cfg = config.load(config_file(tmp_path, door_video))
    daemon = Daemon(cfg, sink=ListSink(), grabber=grabber)
    try:
        with Running(daemon):
            wait_until(lambda: grabber.frames >= 48)
            flowing = drain()
            assert flowing[0] == "READY=1" and "WATCHDOG=1" in flowing
            wait_until(lambda: grabber.frames == 48 and time.monotonic() - grabber.heartbeat > 0.6)
            drain()
            time.sleep(0.5)
            assert "WATCHDOG=1" not in drain()  # hung read: systemd will restart us
    finally:
        stop.set()
        sock.close()
