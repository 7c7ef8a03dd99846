"""The whole daemon with a real int8 model on a generated video, and as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import Broker
from .helpers import validate_event

ROOT = Path(__file__).resolve().parents[3]


def _scene(face: np.ndarray | None, x: int) -> np.ndarray:
    frame = np.full((480, 640, 3), 90, np.uint8)
    if face is not None:
        frame[40 : 40 + face.shape[0], x : x + face.shape[1]] = face
    return frame


@pytest.fixture(scope="module")
def door_video(tmp_path_factory, tiny_model):
    """An .avi: the astronaut walks in (25 frames), leaves (15 empty), comes back (25)."""
    import skimage.data

    from edge.detectors import create_detector
    from edge.embedder import Embedder
    from edge.gallery import Gallery
    from edge.matching import Matcher
    from edge.pipeline import Recognizer

    d = tmp_path_factory.mktemp("door")
    # the astronaut's head (haar box ~ (176, 66, 96, 96) in the 512 px image), 2x larger
    head = np.ascontiguousarray(skimage.data.astronaut()[16:216, 124:324, ::-1])
    face = cv2.resize(head, (300, 300))
    frames = [_scene(face, 60 + 4 * i) for i in range(25)]
    frames += [_scene(None, 0) for _ in range(15)]
    frames += [_scene(face, 200 - 4 * i) for i in range(25)]
    video = d / "door.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    for f in frames:
        w.write(f)
    w.release()
    emb = Embedder(tiny_model)
    gallery = Gallery.create(d / "gallery.npz", emb.model_id, emb.input_size, emb.embedding_size)
    rec = Recognizer(create_detector("haar"), emb, Matcher(gallery, 0.5))
    crops = [r.crop for f in frames[:25:5] for r in rec.process(f)]
    assert crops, "haar found no face in the generated video"
    gallery.enroll("astronaut", np.stack(crops), emb.embed(np.stack(crops)), ["video"] * len(crops))
    gallery.save()
    return {"video": video, "gallery": d / "gallery.npz", "model": tiny_model}


def _config(tmp_path: Path, door: dict, extra: str = "", camera: str | None = None) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[daemon]
device_id = "door1"
[camera]
source = "{camera or door["video"]}"
exit_on_end = {"false" if camera else "true"}
retry_initial_s = 0.2
[recognition]
model = "{door["model"]}"
gallery = "{door["gallery"]}"
detector = "haar"
threshold = 0.5
threads = 1
[tracking]
min_sharpness = 1.0
[outbox]
path = "{tmp_path / "outbox.sqlite"}"
[snapshot]
directory = "{tmp_path / "snaps"}"
{extra}
"""
    )
    return cfg


def _run_to_end(cfg: Path) -> list[dict]:
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_video_one_event_per_visit_with_cooldown(tmp_path, door_video):
    """Two visits within the cooldown: one event; cooldown 0: one per visit. Stdout sink."""
    events = _run_to_end(
        _config(tmp_path, door_video, "[snapshot]\n" if False else "[cooldown]\nperson_s = 60.0\n")
    )
    recognized = [e for e in events if e["type"] == "recognized"]
    assert [e["person"] for e in recognized] == ["astronaut"], events
    for e in events:
        validate_event(e)
    assert recognized[0]["track_frames"] >= 3 and recognized[0]["model_id"]
    events0 = _run_to_end(_config(tmp_path, door_video, "[cooldown]\nperson_s = 0.0\n"))
    assert [e["person"] for e in events0 if e["type"] == "recognized"] == ["astronaut"] * 2


def video_to_frames(video: Path, folder: Path) -> Path:
    """Write every frame of ``video`` as ``folder/NNN.jpg`` (a folder source for the daemon)."""
    folder.mkdir()
    cap = cv2.VideoCapture(str(video))
    try:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return folder
            cv2.imwrite(str(folder / f"{i:03d}.jpg"), frame)
            i += 1
    finally:
        cap.release()


@pytest.mark.slow
@pytest.mark.mqtt
def test_daemon_subprocess_availability_will_and_sigterm(tmp_path, door_video, recorder):
    broker = Broker(tmp_path).start()
    frames_dir = video_to_frames(door_video["video"], tmp_path / "frames")
    extra = (
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive = 2\nreconnect_max_s = 1\n'
    )
    cfg = _config(tmp_path, door_video, extra, camera=str(frames_dir))
    avail = "doorface/door1/availability"
    procs: list[subprocess.Popen] = []
    try:
        rec = recorder(broker.port, [avail, "doorface/door1/events"])
        for sig in (signal.SIGKILL, signal.SIGTERM):
            p = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(p)
            n = len(rec.messages)
            rec.wait_for(lambda m, n=n: m in rec.messages[n:] and m[1] == b"online", timeout=60)
            ev = rec.wait_for(lambda m: m[0].endswith("/events"), timeout=60)
            validate_event(json.loads(ev[0][1]))
            n = len(rec.messages)
            os.kill(p.pid, sig)
            rc = p.wait(30)
            # kill -9: the broker sends the retained last will (after 1.5 x keepalive);
            # SIGTERM: the daemon publishes offline itself and exits 0.
            rec.wait_for(lambda m, n=n: m in rec.messages[n:] and m[1] == b"offline", timeout=15)
            if sig == signal.SIGTERM:
                assert rc == 0, p.stderr.read()[-2000:]
            late = recorder(broker.port, [avail])
            assert late.wait_for(lambda m: m[0] == avail)[0][1:] == (b"offline", True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        broker.stop()
