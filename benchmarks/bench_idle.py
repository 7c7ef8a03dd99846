"""Idle CPU of the daemon with and without the motion gate, and what the gate costs in latency.

Idle: the real daemon (``edge run``, shipped model and YuNet) on a generated empty doorway
(a static 640x480 scene with sensor noise, MJPG, played at ``camera.fps``), once with
``motion.enabled = true`` and once false. CPU seconds per wall second of the daemon process
(all threads: /proc/<pid>/stat utime + stime) over a window that starts ``--settle`` seconds
after the first frame, so model loading is left out. Both runs decode the same video, so that
share of the cost is in both.

Latency: the door video of tests/edge/daemon/door.py (the astronaut walks in, leaves for 15
frames, comes back; cooldown 0, so two events) with the gate on and off. Per event: first
frame with his face -> event on stdout (ms), and for the second visit, the frames between the
first visits' first faces (40 in the video: more would mean the gate noticed him late).

    .venv/bin/python -m benchmarks.bench_idle --seconds 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VISIT_GAP_FRAMES = 40  # door.py: the second visit's first face is frame 40


def empty_doorway_video(path: Path, seconds: float, fps: float, seed: int = 0) -> Path:
    """A static doorway with Gaussian sensor noise (sigma 3), ``seconds`` long, MJPG .avi."""
    rng = np.random.default_rng(seed)
    scene = np.full((480, 640, 3), 90, np.int16)
    scene[60:480, 250:390] = (40, 55, 70)  # the door
    scene[:, :40] = 120  # a wall edge
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for _ in range(round(seconds * fps)):
        noisy = scene + rng.normal(0, 3, scene.shape).round().astype(np.int16)
        w.write(np.clip(noisy, 0, 255).astype(np.uint8))
    w.release()
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _config(tmp: Path, door: dict, video: Path, fps: float, gate: bool, name: str) -> Path:
    from tests.edge.daemon.door import config_file

    extra = f"[cooldown]\nperson_s = 0.0\n[motion]\nenabled = {str(gate).lower()}\n"
    d = tmp / name
    d.mkdir()
    cfg = config_file(d, door, extra, camera=str(video))
    text = cfg.read_text().replace("exit_on_end = false", "exit_on_end = true")
    cfg.write_text(text.replace("retry_initial_s = 0.2", f"retry_initial_s = 0.2\nfps = {fps}"))
    return cfg


class DaemonProcess:
    """``edge run`` with its stdout (events) and log read on threads, stamped on arrival."""

    def __init__(self, cfg: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[tuple[float, dict]] = []
        self.log: list[str] = []
        self.running = threading.Event()
        self._threads = [
            threading.Thread(target=self._read_events, daemon=True),
            threading.Thread(target=self._read_log, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_events(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            if line.strip():
                self.events.append((time.time(), json.loads(line)))

    def _read_log(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.log.append(line.rstrip())
            if "daemon running" in line:
                self.running.set()

    def finish(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(30)
        for t in self._threads:
            t.join(5)
        if self.proc.returncode != 0:
            raise SystemExit(f"edge run exited with {self.proc.returncode}: {self.log[-3:]}")

    def summary(self) -> str:
        line = next((line for line in self.log if "stopped: " in line), "stopped: no summary")
        return line.split("stopped: ", 1)[1]


def idle_cpu(cfg: Path, seconds: float, settle: float) -> tuple[float, str]:
    """CPU seconds per wall second of the daemon on the empty doorway, after ``settle``."""
    d = DaemonProcess(cfg)
    if not d.running.wait(120):
        d.proc.terminate()
        raise SystemExit(f"the daemon did not start: {d.log[-3:]}")
    time.sleep(settle)
    c0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
    time.sleep(seconds - settle - 1.0)  # stop sampling before the clip ends
    c1, t1 = cpu_seconds(d.proc.pid), time.monotonic()
    d.finish(seconds + 60)
    return (c1 - c0) / (t1 - t0), d.summary()


def _ts(s: str) -> float:
    return dt.datetime.fromisoformat(s).timestamp()


def door_latency(cfg: Path, fps: float) -> tuple[list[float], list[float]]:
    """(first face -> event ms per recognized event, second visit's first face in frames
    after the first's) for one run of the door video."""
    d = DaemonProcess(cfg)
    d.finish(120)
    rec = [(t, e) for t, e in d.events if e["type"] == "recognized"]
    latency = [1000 * (t - _ts(e["first_seen"])) for t, e in rec]
    firsts = sorted({_ts(e["first_seen"]) for _, e in rec})
    gaps = [(b - a) * fps for a, b in itertools.pairwise(firsts)]
    return latency, gaps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="length of the empty-doorway clip")
    ap.add_argument("--fps", type=float, default=15, help="camera.fps")
    ap.add_argument("--settle", type=float, default=3, help="seconds after start-up not sampled")
    ap.add_argument("--repeats", type=int, default=3, help="door video runs per setting")
    ap.add_argument("--note", default="", help="appended to the report (e.g. machine load)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from edge.pipeline import DEFAULT_MODEL
    from tests.edge.daemon.door import make_door_video

    tmp = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    (tmp / "door").mkdir()
    door = make_door_video(tmp / "door", DEFAULT_MODEL, "yunet")
    empty = empty_doorway_video(tmp / "empty.avi", args.seconds, args.fps)
    cpu, summaries, latency, gaps = {}, {}, {}, {}
    for gate in (False, True):
        name = "on" if gate else "off"
        cfg = _config(tmp, door, empty, args.fps, gate, f"idle-{name}")
        cpu[gate], summaries[gate] = idle_cpu(cfg, args.seconds, args.settle)
        latency[gate], gaps[gate] = [], []
        for i in range(args.repeats):
            cfg = _config(tmp, door, door["video"], args.fps, gate, f"door-{name}-{i}")
            lat, gap = door_latency(cfg, args.fps)
            latency[gate] += lat
            gaps[gate] += gap
        print(f"gate {name}: cpu {cpu[gate]:.3f}, {summaries[gate]}, latency {latency[gate]}")
    if not latency[True] or not latency[False]:
        print("no events on the door video", file=sys.stderr)
        return 1

    from benchmarks._report import markdown_table, write_section

    def row(gate: bool) -> list[object]:
        lat = latency[gate]
        return [
            "on" if gate else "off",
            f"{cpu[gate]:.3f}",
            len(lat),
            f"{statistics.median(lat):.0f}",
            f"{max(lat):.0f}",
            ", ".join(f"{g:.1f}" for g in gaps[gate]) or "-",
        ]

    ratio = cpu[True] / cpu[False]
    body = (
        f"Command: `python -m benchmarks.bench_idle --seconds {args.seconds:g} --fps "
        f"{args.fps:g} --settle {args.settle:g} --repeats {args.repeats}`. The real daemon "
        f"(`edge run`, shipped int8 model, YuNet at detect_width 320, stdout sink) on a "
        f"generated {args.seconds:g} s empty doorway (640x480 MJPG, static scene + sensor noise "
        f"sigma 3) at `camera.fps = {args.fps:g}`. CPU: utime+stime of the daemon's process per "
        f"wall second, from {args.settle:g} s after it logged `running` (model loading left out) "
        f"to 1 s before the clip ends; both runs decode the same video. Latency: the door video "
        f"of tests/edge/daemon/door.py (two visits, cooldown 0) run {args.repeats} times per "
        f"setting; first face -> event is the event's arrival on stdout minus its `first_seen`; "
        f"the visit gap is the frames between the two visits' first detected faces "
        f"({VISIT_GAP_FRAMES} in the video: more would mean the gate saw him late).\n\n"
        + markdown_table(
            [
                "motion gate",
                "idle CPU s/s",
                "events",
                "first face -> event median ms",
                "max ms",
                "visit gap (frames)",
            ],
            [row(False), row(True)],
        )
        + f"\n\nIdle CPU with the gate: {100 * ratio:.0f}% of without (target <= 20%). "
        f"Daemon summaries on the empty doorway: off `{summaries[False]}`; on "
        f"`{summaries[True]}`.\n" + (f"\n{args.note}\n" if args.note else "")
    )
    print(body)
    if not args.no_write:
        write_section("idle", "Idle CPU (motion gate)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
