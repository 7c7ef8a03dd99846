"""Idle CPU of the daemon with and without the motion gate, and what the gate costs in latency.

Idle: the real daemon (``edge run``, shipped model and YuNet) on a generated empty doorway
(a static 640x480 scene with sensor noise, MJPG, played at ``camera.fps``) in four settings:
the gate off; on without the idle rate (``motion.idle_stride = 1``) and with the periodic
detection once a second (``motion.detect_every_s = 1``, the default until 2026-12-05); on with
the idle rate and detection once a second; on as shipped (after a quiet second only every 2nd
camera frame is read; periodic detection every 2 s). CPU seconds per wall second of the daemon
process (all threads: /proc/<pid>/stat utime + stime) over a window that starts ``--settle``
seconds after the first frame, so model loading is left out; ``--idle-repeats`` runs per
setting, interleaved, and the median (one 20 s run of the same setting varied by a third on
this shared machine). Every run decodes the same video, so that share of the cost is in all.

Latency: the door video of tests/edge/daemon/door.py (the astronaut walks in, leaves for 15
frames, comes back; cooldown 0, so two events) per setting. Per event: first frame with his
face -> event on stdout (ms), and for the second visit, the frames between the first visits'
first faces (40 in the video: more would mean the gate noticed him late). Walk-in delay: the
same walk-in after an empty doorway of 45 and of 46 frames (an odd and an even frame index, so
the idle rate's skipped frame is hit once), played in-process at ``camera.fps``: frames between
the first frame with his face and the first frame the detector found it on, and the frame
his event was decided on.

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
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.daemon.config import MotionConfig

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


@dataclass(frozen=True)
class Setting:
    """One row: the ``[motion]`` table the daemon runs with."""

    name: str
    gate: bool  # motion.enabled
    stride: int  # motion.idle_stride
    every_s: float  # motion.detect_every_s


SHIPPED = MotionConfig()
SETTINGS = (
    Setting("off", False, 1, SHIPPED.detect_every_s),
    Setting("on, idle_stride 1, detect_every_s 1", True, 1, 1.0),
    Setting("on, detect_every_s 1", True, SHIPPED.idle_stride, 1.0),
    Setting("on (shipped)", True, SHIPPED.idle_stride, SHIPPED.detect_every_s),
)
WALK_IN_AFTER = (45, 46)  # empty frames before the walk-in


def _config(tmp: Path, door: dict, video: Path, fps: float, setting: Setting, name: str) -> Path:
    from tests.edge.daemon.door import config_file

    extra = (
        f"[cooldown]\nperson_s = 0.0\n[motion]\nenabled = {str(setting.gate).lower()}\n"
        f"idle_stride = {setting.stride}\ndetect_every_s = {setting.every_s}\n"
    )
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


def walk_in_video(door_video: Path, path: Path, empty_frames: int) -> Path:
    """The door video's walk-in (its first 25 frames) after ``empty_frames`` of its empty
    doorway (frame 25)."""
    cap = cv2.VideoCapture(str(door_video))
    frames = [f for ok, f in iter(cap.read, (False, None)) if ok]
    cap.release()
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    for f in [frames[25]] * empty_frames + frames[:25]:
        w.write(f)
    w.release()
    return path


class FirstFace:
    """Daemon observer: the index of the first frame the detector found a face on, and of the
    frame the first event was decided on."""

    def __init__(self) -> None:
        self.index: int | None = None
        self.decided: int | None = None
        self._index_at: dict[float, int] = {}

    def frame(self, frame, results: list) -> None:
        self._index_at[frame.timestamp] = frame.index
        if results and self.index is None:
            self.index = frame.index

    def event(self, ev: dict, decision) -> None:
        if self.decided is None:
            self.decided = self._index_at.get(decision.frame_timestamp)


def walk_in_delay(cfg: Path, first_face_frame: int) -> str:
    """``found / decided``: frames from the first frame with the face to the first the detector
    found it on, and to the frame its event was decided on (the real Daemon in this process,
    paced at camera.fps); ``-`` where it never happened."""
    import io
    import logging

    from edge.daemon import config
    from edge.daemon.loop import Daemon
    from edge.daemon.sinks import StdoutSink

    logging.getLogger("edge").setLevel(logging.WARNING)
    seen = FirstFace()
    Daemon(config.load(cfg), sink=StdoutSink(io.StringIO()), observer=seen).run()
    return " / ".join(
        "-" if i is None else str(i - first_face_frame) for i in (seen.index, seen.decided)
    )


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
    ap.add_argument(
        "--idle-repeats", type=int, default=3, help="empty-doorway runs per setting (median)"
    )
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
    walk_ins = {k: walk_in_video(door["video"], tmp / f"walk-in-{k}.avi", k) for k in WALK_IN_AFTER}
    cpu: dict[str, list[float]] = {s.name: [] for s in SETTINGS}
    summaries, latency, gaps, delays = {}, {}, {}, {}
    for r in range(args.idle_repeats):  # interleaved: a busier minute touches every setting
        for k, setting in enumerate(SETTINGS):
            cfg = _config(tmp, door, empty, args.fps, setting, f"idle-{k}-{r}")
            used, summaries[setting.name] = idle_cpu(cfg, args.seconds, args.settle)
            cpu[setting.name].append(used)
            print(f"{setting.name}: idle cpu {used:.3f} s/s, {summaries[setting.name]}", flush=True)
    for k, setting in enumerate(SETTINGS):
        name = setting.name
        latency[name], gaps[name], delays[name] = [], [], []
        for i in range(args.repeats):
            cfg = _config(tmp, door, door["video"], args.fps, setting, f"door-{k}-{i}")
            lat, gap = door_latency(cfg, args.fps)
            latency[name] += lat
            gaps[name] += gap
        for n, video in walk_ins.items():
            cfg = _config(tmp, door, video, args.fps, setting, f"walk-{k}-{n}")
            delays[name].append(walk_in_delay(cfg, n))
        print(f"{name}: latency {latency[name]}, walk-in {delays[name]}", flush=True)
    median = {name: statistics.median(values) for name, values in cpu.items()}
    if not all(latency.values()):
        print("no events on the door video", file=sys.stderr)
        return 1

    from benchmarks._report import markdown_table, write_section

    def row(name: str) -> list[object]:
        lat = latency[name]
        return [
            name,
            f"{median[name]:.3f} ({', '.join(f'{c:.3f}' for c in cpu[name])})",
            f"{100 * median[name] / median['off']:.0f}%",
            len(lat),
            f"{statistics.median(lat):.0f}",
            f"{max(lat):.0f}",
            ", ".join(f"{g:.1f}" for g in gaps[name]) or "-",
            ", ".join(delays[name]),
        ]

    ratio = median[SETTINGS[-1].name] / median["off"]
    body = (
        f"Command: `python -m benchmarks.bench_idle --seconds {args.seconds:g} --fps "
        f"{args.fps:g} --settle {args.settle:g} --repeats {args.repeats} --idle-repeats "
        f"{args.idle_repeats}`. The real daemon "
        f"(`edge run`, shipped int8 model, YuNet at detect_width 320, stdout sink) on a "
        f"generated {args.seconds:g} s empty doorway (640x480 MJPG, static scene + sensor noise "
        f"sigma 3) at `camera.fps = {args.fps:g}`. CPU: utime+stime of the daemon's process per "
        f"wall second, from {args.settle:g} s after it logged `running` (model loading left out) "
        f"to 1 s before the clip ends; every run decodes the same video, {args.idle_repeats} "
        "runs per setting, the settings interleaved. Latency: the door video "
        f"of tests/edge/daemon/door.py (two visits, cooldown 0) run {args.repeats} times per "
        f"setting; first face -> event is the event's arrival on stdout minus its `first_seen`; "
        f"the visit gap is the frames between the two visits' first detected faces "
        f"({VISIT_GAP_FRAMES} in the video: more would mean the gate saw him late). Walk-in "
        f"delay: the walk-in after {' and '.join(map(str, WALK_IN_AFTER))} frames of empty "
        "doorway, the real Daemon in-process at the same fps: frames from his first frame to "
        "the first frame the detector found him on, and to the frame his event was decided on."
        "\n\n"
        + markdown_table(
            [
                "motion gate",
                "idle CPU s/s: median (runs)",
                "of gate off",
                "events",
                "first face -> event median ms",
                "max ms",
                "visit gap (frames)",
                "walk-in: face found / event decided (frames after his first)",
            ],
            [row(s.name) for s in SETTINGS],
        )
        + f"\n\nIdle CPU as shipped: {100 * ratio:.0f}% of the gate off (target <= 20%). "
        "Daemon summaries on the empty doorway: "
        + "; ".join(f"{s.name} `{summaries[s.name]}`" for s in SETTINGS)
        + ".\n"
        + (f"\n{args.note}\n" if args.note else "")
    )
    print(body)
    if not args.no_write:
        write_section("idle", "Idle CPU (motion gate)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
