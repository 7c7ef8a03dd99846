"""The whole daemon with a real int8 model on a generated video, and as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Broker
from .door import config_file, video_to_frames
from .helpers import validate_event

ROOT = Path(__file__).resolve().parents[3]


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
        config_file(
            tmp_path, door_video, "[snapshot]\n" if False else "[cooldown]\nperson_s = 60.0\n"
        )
    )
    recognized = [e for e in events if e["type"] == "recognized"]
    assert [e["person"] for e in recognized] == ["astronaut"], events
    for e in events:
        validate_event(e)
    assert recognized[0]["track_frames"] >= 1 and recognized[0]["model_id"]
    events0 = _run_to_end(config_file(tmp_path, door_video, "[cooldown]\nperson_s = 0.0\n"))
    assert [e["person"] for e in events0 if e["type"] == "recognized"] == ["astronaut"] * 2


@pytest.mark.slow
@pytest.mark.mqtt
def test_daemon_subprocess_availability_will_and_sigterm(tmp_path, door_video, recorder):
    broker = Broker(tmp_path).start()
    frames_dir = video_to_frames(door_video["video"], tmp_path / "frames")
    extra = (
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive = 2\nreconnect_max_s = 1\n'
    )
    cfg = config_file(tmp_path, door_video, extra, camera=str(frames_dir))
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
