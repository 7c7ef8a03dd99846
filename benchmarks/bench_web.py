"""Web app benchmark: recognition over HTTP, the daemon with the Live page open or closed,
the memory the web part adds, and what "not <name>" does to false accepts.

    .venv/bin/python -m benchmarks.bench_web [--seconds 60] [--requests 200] [--no-lfw]

1. ``POST /api/recognize`` with a 640x480 JPEG (one face, the astronaut, enrolled), sent
   ``--requests`` times over one keep-alive connection to ``edge web`` (a subprocess, the
   shipped int8 model and YuNet): client-side latency, median and p95.
2. The daemon (``edge run``, subprocess) on the generated door video (bench_daemon's: the
   astronaut walks in and out, 640x480), three runs of ``--seconds`` each: web off; web on
   with no page open; web on with the Live page open (a signed-in client fetching
   ``/live.jpg`` once a second, as the page does). Paced at 15 fps like a camera: event
   latency (event line read from the daemon's stdout minus the capture time of the first
   frame with the face) and RSS. Then each again for
   ``--unpaced`` seconds unpaced (every frame, as fast as it goes), ``--rounds`` times each,
   interleaved: frames per second.
3. With ``../shared`` (LFW, pairsDevTest people, never trained on): 40 people enrolled from 3
   photos, strangers with at least 2 photos. Each stranger's first photo that is named as
   someone is marked "not <name>" (a negative example, as the Visits page does); measured:
   strangers' later photos accepted as someone, and enrolled people's other photos named
   right and wrong, before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2
import numpy as np
import requests

from benchmarks._report import pct, rss_mb
from tests.edge.daemon.conftest import free_port

PASSWORD = "bench-password"


def _web_section(tmp: Path, port: int) -> str:
    return (
        f'[web]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
        f'password_file = "{tmp / "pw"}"\ntoken_file = "{tmp / "token"}"\n'
        f'visits = "{tmp / "visits.sqlite"}"\n'
    )


def _wait_for(url: str, headers: dict, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if requests.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


def bench_recognize(door: dict, tmp: Path, photo: np.ndarray, n: int) -> list[float]:
    """Client-side ms per ``POST /api/recognize`` of ``photo`` to ``edge web``."""
    from edge.web.auth import ensure_token, write_password
    from tests.edge.daemon.door import config_file

    port = free_port()
    cfg = config_file(tmp, door, _web_section(tmp, port))
    write_password(tmp / "pw", PASSWORD)
    auth = {"Authorization": f"Bearer {ensure_token(tmp / 'token')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "web", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    body = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    try:
        _wait_for(url + "/status", auth)
        s = requests.Session()
        headers = {**auth, "Content-Type": "image/jpeg"}
        times = []
        for i in range(n + 10):
            t0 = time.perf_counter()
            r = s.post(url + "/recognize", headers=headers, data=body)
            elapsed = 1000 * (time.perf_counter() - t0)
            assert r.status_code == 200 and r.json()["faces"][0]["name"] == "astronaut", r.text
            if i >= 10:
                times.append(elapsed)
        return times
    finally:
        proc.terminate()
        proc.wait(30)


def _ts(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def run_daemon(
    door: dict, frames: Path, tmp: Path, *, web: bool, page: bool, fps: float, seconds: float
) -> dict:
    """One `edge run`: events (arrival, event), frames/s, RSS samples."""
    from tests.edge.daemon.door import config_file

    port = free_port()
    extra = "[cooldown]\nperson_s = 0.0\nunknown_s = 0.0\n" + (
        _web_section(tmp, port) if web else ""
    )
    cfg = config_file(tmp, door, extra, camera=str(frames))
    cfg.write_text(
        cfg.read_text().replace("retry_initial_s = 0.2", f"retry_initial_s = 0.2\nfps = {fps}")
    )
    (tmp / "visits.sqlite").unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events: list[tuple[float, dict]] = []
    log: list[tuple[float, str]] = []
    threading.Thread(
        target=lambda: events.extend(
            (time.time(), json.loads(x)) for x in proc.stdout if x.strip()
        ),
        daemon=True,
    ).start()
    threading.Thread(
        target=lambda: log.extend((time.time(), x) for x in proc.stderr), daemon=True
    ).start()
    stop_page = threading.Event()
    fetched = []
    try:
        while not any("daemon running" in line for _, line in log):
            if proc.poll() is not None:
                raise RuntimeError("".join(line for _, line in log)[-2000:])
            time.sleep(0.1)
        started = next(t for t, line in log if "daemon running" in line)
        if page:
            threading.Thread(
                target=_live_page, args=(port, stop_page, fetched), daemon=True
            ).start()
        rss = []
        while time.time() < started + seconds:
            rss.append(rss_mb(proc.pid))
            time.sleep(1.0)
    finally:
        stop_page.set()
        stopped = time.time()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        time.sleep(0.2)
    summary = next(line for _, line in log if "stopped:" in line)
    frames_done = int(summary.split("stopped:")[1].split("frames")[0])
    recognized = [(t, e) for t, e in events if e["type"] == "recognized"]
    return {
        "fps": frames_done / (stopped - started),
        "visit": [1000 * (t - _ts(e["first_seen"])) for t, e in recognized],
        "events": len(events),
        "rss": rss,
        "page_frames": len(fetched),
    }


def _live_page(port: int, stop: threading.Event, fetched: list) -> None:
    """What an open Live page does: sign in, then one /live.jpg a second."""
    base = f"http://127.0.0.1:{port}"
    s = requests.Session()
    page = s.get(base + "/login").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    s.post(base + "/login", data={"csrf": csrf, "password": PASSWORD})
    while not stop.wait(1.0):
        r = s.get(base + "/live.jpg")
        if r.status_code == 200:
            fetched.append(len(r.content))


def bench_negatives() -> dict | None:
    """False accepts of strangers before/after "not <name>" on LFW (None without the data)."""
    from benchmarks.bench_vs_dlib import PAIRS
    from benchmarks.frames import LFW

    if not PAIRS.exists() or not LFW.exists():
        return None
    from edge.detectors import TRAINING_DETECTOR, create_detector
    from edge.embedder import RECOGNITION_EXPOSURE, RECOGNITION_FLIP, Embedder
    from edge.errors import DoorfaceError
    from edge.gallery import STORED_CROP_SIZE, Gallery
    from edge.matching import Matcher
    from edge.pipeline import resolve_model
    from edge.preprocess import face_crop_from_file
    from trainer.data import identification_set

    embedder = Embedder(resolve_model(None), flip=RECOGNITION_FLIP, exposure=RECOGNITION_EXPOSURE)
    detector = create_detector(TRAINING_DETECTOR)
    files, labels = identification_set(PAIRS, LFW, per_person=12)
    names, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng(0)
    enrolled = rng.permutation(names[counts >= 5])[:40]
    strangers = [n for n in names[counts >= 2] if n not in set(enrolled)]

    def embed(person: str) -> np.ndarray:
        crops = []
        for f in [f for f, lab in zip(files, labels, strict=True) if lab == person]:
            try:
                crops.append(
                    face_crop_from_file(
                        f, detector, embedder.input_size, embedder.preprocessing
                    ).crop
                )
            except DoorfaceError:
                continue
        return embedder.embed(np.stack(crops)) if crops else np.zeros((0, 1))

    blank = np.zeros((1, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8)
    gallery = Gallery.create(
        "g.npz", embedder.model_id, embedder.input_size, embedder.embedding_size
    )
    probes, truth = [], []
    for person in enrolled:
        e = embed(person)
        if len(e) < 4:  # 3 to enrol, 1 to probe
            continue
        gallery.enroll(person, np.repeat(blank, 3, 0), e[:3], [""] * 3)
        probes.append(e[3:])
        truth += [person] * len(e[3:])
    visits = {s: e for s in strangers if len(e := embed(s)) >= 2}
    probes_arr = np.concatenate(probes)

    def measure(m: Matcher) -> dict:
        known = m.match_many(probes_arr)
        later = [r for e in visits.values() for r in m.match_many(e[1:])]
        return {
            "right": np.mean([r.name == t for r, t in zip(known, truth, strict=True)]),
            "wrong": np.mean([r.name not in (None, t) for r, t in zip(known, truth, strict=True)]),
            "stranger": np.mean([r.name is not None for r in later]),
        }

    before = Matcher(gallery, embedder.scoring)
    first = {s: before.match(e[0]) for s, e in visits.items()}
    marked = {s: r.name for s, r in first.items() if r.name is not None}
    for s, name in marked.items():
        gallery.add_negative(name, blank, visits[s][:1])
    after = before.with_gallery(gallery)
    marked_later = [e[1:] for s, e in visits.items() if s in marked]
    return {
        "people": len(gallery.people),
        "probes": len(probes_arr),
        "strangers": len(visits),
        "later": sum(len(e) - 1 for e in visits.values()),
        "marked": len(marked),
        "marked_later": sum(len(e) for e in marked_later),
        "marked_before": np.mean(
            [r.name is not None for e in marked_later for r in before.match_many(e)]
        ),
        "marked_after": np.mean(
            [r.name is not None for e in marked_later for r in after.match_many(e)]
        ),
        "before": measure(before),
        "after": measure(after),
        "threshold": embedder.scoring.threshold,
    }


def _row(label: str, v: list[float]) -> list[str]:
    return [label, f"{statistics.median(v):.1f}", f"{pct(v, 0.95):.1f}"] if v else [label, "-", "-"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="each paced daemon run")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="unpaced runs of each, interleaved")
    ap.add_argument("--unpaced", type=float, default=20, help="seconds of each unpaced run")
    ap.add_argument("--no-lfw", action="store_true", help="skip the negative-example part")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    from benchmarks._report import markdown_table, write_section
    from edge.pipeline import DEFAULT_MODEL
    from edge.web.auth import write_password
    from tests.edge.daemon.door import make_door_video, video_to_frames

    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    (tmp / "door").mkdir()
    door = make_door_video(tmp / "door", DEFAULT_MODEL, "yunet")
    frames = video_to_frames(door["video"], tmp / "frames")
    photo = cv2.imread(str(sorted(frames.glob("*.jpg"))[12]))
    rec = bench_recognize(door, tmp, photo, args.requests)
    print("recognize ms: median", statistics.median(rec), "p95", pct(rec, 0.95), flush=True)
    write_password(tmp / "pw", PASSWORD)
    conditions = {
        "web off": (False, False),
        "web on, no page": (True, False),
        "web on, Live page open": (True, True),
    }
    paced = {}
    for label, (web, page) in conditions.items():
        paced[label] = run_daemon(
            door, frames, tmp, web=web, page=page, fps=15, seconds=args.seconds
        )
        print(label, {k: v for k, v in paced[label].items() if k != "rss"}, flush=True)
    fps: dict[str, list[float]] = {label: [] for label in conditions}
    for _ in range(args.rounds):  # interleaved, so a busy spell of the machine hits all alike
        for label, (web, page) in conditions.items():
            run = run_daemon(door, frames, tmp, web=web, page=page, fps=0, seconds=args.unpaced)
            fps[label].append(run["fps"])
            print(label, "unpaced", run["fps"], flush=True)
    negatives = None if args.no_lfw else bench_negatives()

    rows = [
        [
            label,
            f"{statistics.median(fps[label]):.1f} ({', '.join(f'{v:.1f}' for v in fps[label])})",
            *_row("", run["visit"])[1:],
            str(run["events"]),
            f"{statistics.median(run['rss'][2:]):.0f}",
            f"{max(run['rss']):.0f}",
        ]
        for label, run in paced.items()
    ]
    off = statistics.median(paced["web off"]["rss"][2:])
    on = statistics.median(paced["web on, Live page open"]["rss"][2:])
    body = [
        f"Command: `python -m benchmarks.bench_web --seconds {args.seconds:g} --unpaced "
        f"{args.unpaced:g} --rounds {args.rounds} --requests {args.requests}`. Shipped int8 "
        "model, YuNet, 1 recognition thread, the default `[web]` settings, all on this "
        "machine's loopback; the machine runs other jobs too, so compare rows of one run "
        "rather than runs.",
        "",
        f"`POST /api/recognize`, a 640x480 JPEG with one enrolled face, {args.requests} requests "
        f"over one keep-alive connection to `edge web`: median **{statistics.median(rec):.1f} ms**, "
        f"p95 **{pct(rec, 0.95):.1f} ms** (client side: upload, decode, detect, align, embed, "
        "match, JSON).",
        "",
        f"The daemon on the door video (bench_daemon's), {args.seconds:g} s paced at 15 fps per row "
        f"for latency and memory; frames/s from {args.rounds} interleaved unpaced runs of "
        f"{args.unpaced:g} s each (median, then each run). Live page open = a signed-in client "
        "fetching `/live.jpg` once a second, as the page does.",
        "",
        markdown_table(
            [
                "daemon",
                "frames/s unpaced (runs)",
                "first face frame -> event, median ms",
                "p95",
                "events",
                "RSS median MB",
                "RSS max MB",
            ],
            rows,
        ),
        "",
        f"Memory the web part adds (median RSS, web on with the page open minus web off): "
        f"**{on - off:.0f} MB** (budget 40 MB): Starlette, uvicorn, Jinja2, the web app's own "
        "detector and model interpreter, SQLite.",
    ]
    if negatives:
        n = negatives
        b, a = n["before"], n["after"]
        body += [
            "",
            '### "Not <name>": negative examples against look-alikes (LFW)',
            "",
            f"{n['people']} LFW test-pair people enrolled from 3 photos each ({n['probes']} other "
            f"photos of them as probes); {n['strangers']} other people with 2+ photos as "
            f"visitors. The first photo of {n['marked']} of them was named as someone (threshold "
            f'{n["threshold"]:.3f}) and marked "not <name>"; their {n["marked_later"]} later '
            f"photos were then accepted as someone {n['marked_before']:.1%} of the time before "
            f"and **{n['marked_after']:.1%}** after.",
            "",
            markdown_table(
                [
                    "",
                    "right name (enrolled)",
                    "wrong name (enrolled)",
                    "stranger accepted (all later photos)",
                ],
                [
                    ["before", f"{b['right']:.3f}", f"{b['wrong']:.3f}", f"{b['stranger']:.3f}"],
                    [
                        'after "not X"',
                        f"{a['right']:.3f}",
                        f"{a['wrong']:.3f}",
                        f"{a['stranger']:.3f}",
                    ],
                ],
            ),
        ]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("web", "Web app: API latency, daemon with the page open, memory", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
