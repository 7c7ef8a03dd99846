"""Daemon benchmark: face-appears -> event-received latency over MQTT, and daemon RSS.

Runs the real daemon (``edge run``) as a subprocess on a folder of generated frames
(the astronaut walking in and out) paced at --fps like a camera, with a real mosquitto
and a subscriber. For each event it records:
  * decision latency: event received - capture time of the decisive frame
    (recognition + tracking + outbox fsync + MQTT round trip);
  * visit latency: event received - capture time of the first frame with the face
    (adds the confirm_frames aggregation: (confirm_frames-1) / fps).
RSS of the daemon process is sampled every second.

    .venv/bin/python -m benchmarks.bench_daemon --seconds 600
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pct(v: list[float], q: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--fps", type=float, default=15)
    ap.add_argument(
        "--instant-above", type=float, default=0.1, help="tracking.instant_above (-1: off)"
    )
    ap.add_argument(
        "--yunet",
        default=str(ROOT.parent / "shared/models/yunet/face_detection_yunet_2026may.onnx"),
    )
    ap.add_argument("--note", default="", help="appended to the report (e.g. machine load)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    import paho.mqtt.client as mqtt

    sys.path.insert(0, str(ROOT))
    from edge.pipeline import DEFAULT_MODEL
    from tests.edge.daemon.conftest import Broker
    from tests.edge.daemon.door import config_file, make_door_video, video_to_frames

    yunet = Path(args.yunet)
    if not yunet.is_file():
        print(f"{yunet}: YuNet model not found (--yunet)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    (tmp / "door").mkdir()
    door = make_door_video(tmp / "door", DEFAULT_MODEL, str(yunet))
    frames_dir = video_to_frames(door["video"], tmp / "frames")
    broker = Broker(tmp).start()
    extra = (
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f"[cooldown]\nperson_s = 0.0\nunknown_s = 0.0\n"
    )
    tracking = f"[tracking]\ninstant_above = {args.instant_above}\n"
    cfg = config_file(tmp, door, extra, camera=str(frames_dir))
    text = (
        cfg.read_text()
        .replace("retry_initial_s = 0.2", f"retry_initial_s = 0.2\nfps = {args.fps}")
        .replace("[tracking]\n", tracking)
    )
    cfg.write_text(text)
    received: list[tuple[float, dict]] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench")
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("doorface/door1/events", qos=1)
    sub.on_message = lambda c, u, m: received.append((time.time(), json.loads(m.payload)))
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rss: list[float] = []
    try:
        end = time.time() + args.seconds
        while time.time() < end and proc.poll() is None:
            rss.append(_rss_mb(proc.pid))
            time.sleep(1.0)
    finally:
        proc.terminate()
        proc.wait(30)
        sub.loop_stop()
        broker.stop()

    def ts(s: str) -> float:
        return dt.datetime.fromisoformat(s).timestamp()

    rec = [(t, e) for t, e in received if e["type"] == "recognized"]
    others = len(received) - len(rec)
    decision = [1000 * (t - ts(e["frame_timestamp"])) for t, e in rec]
    visit = [1000 * (t - ts(e["first_seen"])) for t, e in rec]
    if not decision:
        print("no events received", file=sys.stderr)
        return 1
    one_frame = sum(e["track_frames"] == 1 for _, e in rec)
    rows = [
        [
            "first face frame -> event received (ms)",
            f"{statistics.median(visit):.1f}",
            f"{_pct(visit, 0.95):.1f}",
            f"{max(visit):.1f}",
        ],
        [
            "deciding frame -> event received (ms)",
            f"{statistics.median(decision):.1f}",
            f"{_pct(decision, 0.95):.1f}",
            f"{max(decision):.1f}",
        ],
    ]
    from benchmarks._report import markdown_table, write_section

    instant = (
        f"tracking.instant_above = {args.instant_above:g}"
        if args.instant_above >= 0
        else "single-frame decisions off"
    )
    body = (
        f"Command: `python -m benchmarks.bench_daemon --seconds {args.seconds:g} --fps {args.fps:g}"
        f" --instant-above {args.instant_above:g}`. The real daemon (`edge run`) as a subprocess "
        f"with the shipped int8 model and YuNet, on 640x480 frames of the astronaut walking in "
        f"and out (a folder source paced at {args.fps:g} fps, replayed in a loop every 4.3 s; the "
        f"last visit of one replay and the first of the next join into one track), a real mosquitto on loopback, QoS 1, outbox fsync (synchronous=FULL), a "
        f"subscriber timing arrivals. Run length {args.seconds:g} s: {len(rec)} `recognized` "
        f"events ({one_frame} decided from their first frame, {instant}), {others} other events "
        f"(0: the astronaut was never called unknown).\n\n"
        + markdown_table(["latency", "median", "p95", "max"], rows)
        + f"\n\nDaemon RSS: start {rss[1] if len(rss) > 1 else rss[0]:.0f} MB, max "
        f"{max(rss):.0f} MB, end {rss[-1]:.0f} MB (target < 200 MB). Target: p95 of the first "
        f"row under 100 ms. Without single-frame decisions the first row also waits for "
        f"confirm_frames=3 agreeing frames ({2000 / args.fps:.0f} ms at {args.fps:g} fps).\n"
        + (f"\n{args.note}\n" if args.note else "")
    )
    print(body)
    if not args.no_write:
        write_section("daemon", "Daemon: event latency and memory", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
