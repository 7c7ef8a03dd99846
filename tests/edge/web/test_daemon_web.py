"""The daemon (`edge run`) with the web app on: Live, visits, and gallery edits it picks up."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from edge.web.auth import write_password
from tests.edge.daemon.door import config_file, make_door_video, video_to_frames

from .conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float = 60.0):
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_daemon_serves_live_records_visits_and_follows_gallery_edits(tmp_path):
    from edge.pipeline import DEFAULT_MODEL

    (tmp_path / "door").mkdir()
    door = make_door_video(tmp_path / "door", DEFAULT_MODEL, "yunet")
    frames = video_to_frames(door["video"], tmp_path / "frames")
    port = _free_port()
    web = (
        f'[web]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
        f'password_file = "{tmp_path / "pw"}"\ntoken_file = "{tmp_path / "token"}"\n'
        f'visits = "{tmp_path / "visits.sqlite"}"\n'
        "[cooldown]\nperson_s = 0.0\n"
    )
    cfg = config_file(tmp_path, door, web, camera=str(frames))
    cfg.write_text(
        cfg.read_text().replace("retry_initial_s = 0.2", "retry_initial_s = 0.2\nfps = 15")
    )
    write_password(tmp_path / "pw", PASSWORD)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events: list[dict] = []
    reader = threading.Thread(
        target=lambda: events.extend(json.loads(line) for line in proc.stdout if line.strip()),
        daemon=True,
    )
    reader.start()
    api = f"http://127.0.0.1:{port}/api"
    try:
        token = _wait(
            "the token file",
            lambda: (tmp_path / "token").exists() and (tmp_path / "token").read_text().strip(),
        )
        auth = {"Authorization": f"Bearer {token}"}

        def status():
            try:
                return requests.get(api + "/status", headers=auth, timeout=5).json()
            except requests.ConnectionError:
                return None

        _wait("frames", lambda: (s := status()) and s["camera"]["frames"] > 10)
        s = requests.Session()
        page = s.get(f"http://127.0.0.1:{port}/login")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        s.post(f"http://127.0.0.1:{port}/login", data={"csrf": csrf, "password": PASSWORD})
        live = s.get(f"http://127.0.0.1:{port}/live.jpg")
        assert live.status_code == 200 and live.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(live.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)

        def recorded():
            found = requests.get(api + "/events?person=astronaut", headers=auth).json()["events"]
            return found

        visit = _wait("a recorded visit", recorded)[0]
        assert visit["type"] == "recognized" and visit["score"] > 0.5
        crop = requests.get(api + f"/events/{visit['visit_id']}/crop.png", headers=auth)
        assert crop.status_code == 200
        published = {e["visit_id"] for e in events}
        assert visit["visit_id"] in published  # the same visit went to the event sink

        r = requests.post(api + "/people/astronaut/rename", headers=auth, json={"name": "Eileen"})
        assert r.status_code == 200, r.text
        renamed_at = time.time()
        _wait(
            "an event naming Eileen",
            lambda: any(
                e["person"] == "Eileen" and e["timestamp"] > _iso(renamed_at) for e in events
            ),
        )
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        stderr = proc.stderr.read()
    assert code == 0, stderr[-3000:]
    assert "gallery loaded: 1 people (Eileen)" in stderr


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")
