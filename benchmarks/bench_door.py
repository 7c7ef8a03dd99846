"""Door benchmark: household members and strangers at a door, through the real daemon.

Measures issue 12 (recognition) and issue 13 (visit decisions) end to end. Per seed, a clip
from benchmarks/door_clips.py: 8 household members from LFW's pairsDevTest (never trained
on), each enrolled from one photo with the real ``edge enroll`` (in-process, default model
and detector), 24 household visits in 3 rounds with 12 stranger visits (a third) among them,
consecutive visitors 1-3 s apart, a member's visits more than the default
``cooldown.person_s`` apart (a quiet door between rounds), in four conditions (normal,
small, dark, side-lit), 15 frames/s, ~3 minutes. Per variant, the real daemon (``edge run
--config``, a subprocess) plays the clip's frame folder paced at 15 frames/s (a run takes
the clip's length, ~3.5 min with the clip's making for one seed and one variant) into a
real mosquitto on a free loopback port; a subscriber (QoS 1) timestamps
every event on arrival. The config is the daemon's DEFAULT except the frame folder (played
at ``camera.fps``, exiting at its end), the gallery, the broker and the outbox path; a
variant adds TOML ``section.key=value`` overrides, so old and new decision logic run side by
side on the same clips in one run::

    .venv/bin/python -m benchmarks.bench_door --seeds 3 --write     # default + nocooldown
    .venv/bin/python -m benchmarks.bench_door --seeds 1 --quick     # smoke, ~3.5 min (2 variants)
    .venv/bin/python -m benchmarks.bench_door --variant old: \\
        --variant 'new:tracking.decision="vote",cooldown.unknown_s=0'

Timing: the daemon's reader thread reads frame files in order and paces them on a clock that
starts as it reads the first one: frame ``i`` is due at ``start + (i + 1) / fps``
(edge/daemon/grabber.py). ``start`` is that first file's access time (atime), which the
kernel sets on the read (re-armed before each run; a filesystem mounted ``noatime`` is
refused with a clear error); the daemon's "running" log line is no substitute, the folder
listing between the two takes 15-30 ms, half a frame. On a loaded machine the reader falls
behind its clock (measured: 12 s behind after 17 s at load 6 on 2 cores), and then frame
``i`` reaches the daemon when its file is read, not when due: so frame ``i``'s capture time
is the later of the two, every file's atime being recorded. Exact while the reader keeps
pace (checked: decided frames carry timestamps 2-6 ms after their slot); when it is behind,
early by one JPEG decode plus up to one tick of the kernel's coarse file clock (1-4 ms), so
latencies err long, never short. How far behind the reader fell is reported. How events are
matched to visits and what each verdict means is in benchmarks/door_score.py.

Muted decisions: the daemon publishes nothing for a decision a cooldown suppresses, so its
log (stderr, line-buffered) is read as it comes and each "suppressed" line is timed on
arrival; door_score attributes it to a visit by that time, and to the visit whose event
started the cooldown by its "N s ago". A household visit muted by the member's own cooldown
has its own column: the schedule keeps a member's visits apart, so it shows only when the
daemon's clock and the clip's drift apart or a variant lengthens ``cooldown.person_s``. A
member muted because a stranger was just given their name is a miss ("muted after a wrong
name"). If the log ever says less than the daemon's own cooldown counters (its wording
changed), the run says so.

Peak RSS is the daemon's VmHWM, read every 0.2 s until it exits (it cannot fall, and nothing
is allocated while shutting down). Per seed and variant a JSON summary (visits, their events,
the daemon's last state message, no images) goes to benchmarks/results/door/ with
``--write``, which also writes the "Door benchmark" section of docs/BENCHMARKS.md and
docs/door_benchmark.png from this run's summaries (older summaries there are removed, so the
folder always matches the document).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from benchmarks import door_clips, door_score

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "door"
PLOT = ROOT / "docs" / "door_benchmark.png"
DEFAULT_VARIANTS = ("default:", "nocooldown:cooldown.unknown_s=0,cooldown.person_s=0")
CONDITIONS = (*door_clips.CONDITIONS, "all")
#: The targets of issues 12 and 13 (checked per variant in run_rows).
TARGETS_TEXT = (
    "Targets: >= 90% of household visits recognised (of those not muted by the member's own "
    "cooldown), 0 visits with a wrong name, >= 95% of "
    "stranger visits reported `unknown` exactly once, recognised household members reach the "
    "subscriber <= 300 ms (p95) after their face first appears, daemon peak RSS <= 120 MiB."
)


class BenchError(Exception):
    """A one-line reason the benchmark cannot run."""


# -- variants and the daemon's config -------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, dict[str, object]]  # TOML section -> key -> value

    @property
    def text(self) -> str:
        pairs = [f"{s}.{k}={v!r}" for s, table in self.overrides.items() for k, v in table.items()]
        return ", ".join(pairs) or "defaults"


def parse_variant(text: str) -> Variant:
    """``NAME:section.key=value,...`` (``NAME:`` = the defaults). Values are TOML literals;
    anything else is taken as a string (``tracking.decision=vote``)."""
    name, _, spec = text.partition(":")
    if not name or any(c in name for c in "/ ,="):
        raise BenchError(f"--variant {text!r}: give NAME:section.key=value,...")
    overrides: dict[str, dict[str, object]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, eq, raw = item.partition("=")
        section, dot, field = key.strip().partition(".")
        if not (eq and dot and section and field):
            raise BenchError(f"--variant {text!r}: {item!r} is not section.key=value")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        overrides.setdefault(section, {})[field] = value
    return Variant(name, overrides)


def toml_text(tables: dict[str, dict[str, object]]) -> str:
    def literal(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v) if isinstance(v, str) else repr(v)

    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {literal(v)}\n" for k, v in table.items())
        for section, table in tables.items()
    )


def daemon_tables(
    frames: Path, gallery: Path, port: int, outbox: Path, fps: float, variant: Variant
) -> dict[str, dict[str, object]]:
    """The default config but for where frames, gallery, broker and outbox are, plus the
    variant's overrides."""
    tables: dict[str, dict[str, object]] = {
        "camera": {"source": str(frames), "fps": fps, "exit_on_end": True},
        "recognition": {"gallery": str(gallery)},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "outbox": {"path": str(outbox)},
    }
    for section, table in variant.overrides.items():
        tables.setdefault(section, {}).update(table)
    return tables


# -- enrolment --------------------------------------------------------------------------------
def enrol(
    household: list[door_clips.Person], lfw: Path, gallery: Path, model: str = ""
) -> list[str]:
    """Each member from their one enrolment photo with the real ``edge enroll`` (in-process,
    default detector; the shipped model unless ``model`` names another). Returns the problems,
    one line each (none when all enrolled)."""
    from edge.cli import main as edge_main

    problems = []
    for person in household:
        out, err = io.StringIO(), io.StringIO()
        argv = ["enroll", "--gallery", str(gallery), "--name", person.name]
        argv += ["--model", model] if model else []
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = edge_main([*argv, str(lfw / str(person.enrol))])
        if rc != 0:
            last = (err.getvalue().strip().splitlines() or [f"exit status {rc}"])[-1]
            problems.append(f"{person.name}: {last}")
    return problems


# -- one daemon run ---------------------------------------------------------------------------
def rearm_access_times(files: list[Path]) -> None:
    """Set each file's access time back to its modification time, so that the next read
    updates it even under ``relatime``."""
    for path in files:
        st = path.stat()
        os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns))


def capture_times(files: list[Path], fps: float, launched: float) -> list[float]:
    """When the daemon got each frame: its slot on the reader's clock, or when its file was
    read if that was later (see the module docstring)."""
    reads = [p.stat().st_atime_ns / 1e9 for p in files]
    if reads[0] < launched:
        raise BenchError(
            f"{files[0]}: its access time did not change when the daemon read it "
            "(noatime mount?): use --workdir on a filesystem that records access times"
        )
    return [max(reads[0] + (i + 1) / fps, read) for i, read in enumerate(reads)]


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in MiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def copy_log(stream: IO[bytes], log: Path, muted: list[door_score.Muted]) -> None:
    """Copy the daemon's stderr to ``log``; each line saying a cooldown muted a decision goes
    to ``muted`` with its arrival time (the log lines carry no time of their own)."""
    with log.open("wb") as out:
        for raw in stream:
            out.write(raw)
            decision = door_score.muted_decision(raw.decode(errors="replace"))
            if decision is not None:
                muted.append((time.time(), decision))


@dataclass
class DaemonRun:
    events: list[door_score.Event]
    muted: list[door_score.Muted]  # decisions a cooldown suppressed, timed as logged
    state: dict  # the daemon's last state message
    captured: list[float]  # when the daemon got each frame (wall clock)
    peak_rss_mib: float
    wall_s: float


def run_daemon(
    config: Path, port: int, frames: list[Path], fps: float, timeout_s: float, log: Path
) -> DaemonRun:
    """``edge run --config`` until the clip ends, with a subscriber timing every event."""
    import paho.mqtt.client as mqtt

    from edge.daemon.config import load

    cfg = load(config)
    topic = f"{cfg.mqtt.prefix}/{cfg.daemon.device_id}"
    got: list[tuple[float, str, dict]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-door-{os.getpid()}")
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe(
        [(f"{topic}/events", 1), (f"{topic}/state", 1)]
    )
    sub.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    sub.on_message = lambda c, u, m: got.append((time.time(), m.topic, json.loads(m.payload)))
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    try:
        if not subscribed.wait(10):
            raise BenchError(f"could not subscribe to the broker on port {port}")
        rearm_access_times(frames)
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        launched = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        muted: list[door_score.Muted] = []
        reader = threading.Thread(target=copy_log, args=(proc.stderr, log, muted), daemon=True)
        reader.start()
        peak = 0.0
        while proc.poll() is None and time.time() - launched < timeout_s:
            peak = max(peak, peak_rss_mib(proc.pid) or 0.0)
            time.sleep(0.2)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
            reader.join(5)
            raise BenchError(f"the daemon ran past {timeout_s:.0f} s; see {log}")
        reader.join(5)
        wall = time.time() - launched
        quiet_since = time.time()
        while time.time() - quiet_since < 1.0 and time.time() - launched - wall < 5.0:
            n = len(got)
            time.sleep(0.1)
            if len(got) != n:
                quiet_since = time.time()
    finally:
        sub.loop_stop()
        sub.disconnect()
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        raise BenchError(f"the daemon exited with {proc.returncode}: {tail} (log: {log})")
    events = [(t, p) for t, name, p in got if name.endswith("/events")]
    states = [p for _, name, p in got if name.endswith("/state")]
    captured = capture_times(frames, fps, launched)
    return DaemonRun(events, muted, states[-1] if states else {}, captured, peak, wall)


def run_variant(
    seed: int, variant: Variant, plan: door_clips.ClipPlan, clip: Path, work: Path
) -> dict:
    """One daemon run of one variant on one seed's clip: its JSON summary."""
    from tests.edge.daemon.conftest import Broker

    broker = Broker(work).start()
    try:
        config = work / f"{variant.name}.toml"
        tables = daemon_tables(
            clip / "frames",
            clip / "gallery.npz",
            broker.port,
            work / f"outbox-{variant.name}.sqlite",
            plan.fps,
            variant,
        )
        config.write_text(toml_text(tables))
        run = run_daemon(
            config,
            broker.port,
            sorted((clip / "frames").glob("*.jpg")),
            plan.fps,
            plan.frames / plan.fps + 120,
            work / f"{variant.name}.log",
        )
    finally:
        broker.stop()
    records, loose = door_score.visit_records(plan.visits, run.events, run.captured, run.muted)
    counted = sum(v for k, v in run.state.items() if k.startswith("decider_cooldown"))
    if counted != len(run.muted):
        print(
            f"seed {seed} {variant.name}: the daemon counted {counted} muted decisions but "
            f"logged {len(run.muted)} (has its log wording changed? door_score.SUPPRESSED)",
            file=sys.stderr,
        )
    behind = max(c - run.captured[0] - i / plan.fps for i, c in enumerate(run.captured))
    return {
        "seed": seed,
        "variant": variant.name,
        "overrides": variant.overrides,
        "fps": plan.fps,
        "frames": plan.frames,
        "member_spacing_s": plan.member_spacing_s,
        "model_id": next((p["model_id"] for _, p in run.events if "model_id" in p), None),
        "daemon": {
            "peak_rss_mib": round(run.peak_rss_mib, 1),
            "wall_s": round(run.wall_s, 1),
            "state": run.state,
        },
        "reader_behind_s": round(behind, 3),
        "visits": records,
        "unattributed": loose,
    }


# -- reporting --------------------------------------------------------------------------------
def rate(n: int, total: int) -> str:
    return f"{n}/{total} ({100 * n / total:.0f}%)" if total else "-"


def table_rows(summaries: list[dict], variants: list[Variant]) -> list[list[object]]:
    rows: list[list[object]] = []
    for variant in variants:
        runs = [s for s in summaries if s["variant"] == variant.name]
        for condition in CONDITIONS:
            t = door_score.totals(
                r for s in runs for r in s["visits"] if condition in ("all", r["condition"])
            )
            rows.append(
                [
                    variant.name,
                    condition,
                    rate(t["recognised"], t["household_scored"]),
                    t["first_called_unknown"],
                    rate(t["muted_own"], t["household"]),
                    " / ".join(
                        str(t[k])
                        for k in (
                            "missed_unknown",
                            "missed_muted_after_wrong",
                            "missed_named_wrongly",
                            "missed_silent",
                        )
                    ),
                    t["wrong_name_visits"],
                    rate(t["unknown_once"], t["strangers"]),
                    f"{rate(t['silent_strangers'], t['strangers'])}, {t['strangers_muted']} muted",
                    t["extra_events"],
                    door_score.latency_text(t["latency_recognised_ms"]),
                    door_score.latency_text(t["latency_unknown_ms"]),
                ]
            )
    return rows


def run_rows(summaries: list[dict], variants: list[Variant]) -> list[list[object]]:
    """Per variant: what the targets ask, and the daemon's own counts over every seed."""
    rows: list[list[object]] = []
    for variant in variants:
        runs = [s for s in summaries if s["variant"] == variant.name]
        t = door_score.totals(r for s in runs for r in s["visits"])
        p95 = (
            door_score.percentile(t["latency_recognised_ms"], 0.95)
            if t["latency_recognised_ms"]
            else None
        )
        rss = max(s["daemon"]["peak_rss_mib"] for s in runs)
        state = [s["daemon"]["state"] for s in runs]
        muted = sum(v for st in state for k, v in st.items() if k.startswith("decider_cooldown"))
        ok = {
            "recognised": t["household_scored"] and t["recognised"] >= 0.9 * t["household_scored"],
            "wrong": t["wrong_name_visits"] == 0,
            "unknown": t["strangers"] and t["unknown_once"] >= 0.95 * t["strangers"],
            "p95": p95 is not None and p95 <= 300,
            "rss": rss <= 120,
        }
        rows.append(
            [
                f"{variant.name} ({variant.text})",
                "/".join(k for k, good in ok.items() if good) or "none",
                "/".join(k for k, good in ok.items() if not good) or "none",
                f"{p95:.0f}" if p95 is not None else "-",
                f"{rss:.0f}",
                muted,
                t["wrong_name_muted_visits"],
                sum(not e.get("muted") for s in runs for e in s["unattributed"]),
                sum(st.get("dropped_frames", 0) for st in state),
                f"{max(s['reader_behind_s'] for s in runs):.1f}",
                sum(st.get("frames", 0) for st in state),
            ]
        )
    return rows


def plot(summaries: list[dict], variants: list[Variant], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    panels = (  # title, count, out of, target
        ("household visits recognised (% of not muted)", "recognised", "household_scored", 90),
        ("stranger visits: unknown exactly once (%)", "unknown_once", "strangers", 95),
        ("visits with a wrong name", "wrong_name_visits", None, 0),
    )
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    x = np.arange(len(CONDITIONS))
    width = 0.8 / len(variants)
    for ax, (title, key, of, target) in zip(axes, panels, strict=True):
        for i, variant in enumerate(variants):
            runs = [s for s in summaries if s["variant"] == variant.name]
            values = []
            for condition in CONDITIONS:
                t = door_score.totals(
                    r for s in runs for r in s["visits"] if condition in ("all", r["condition"])
                )
                values.append(100 * t[key] / max(1, t[of]) if of else t[key])
            ax.bar(x + (i - (len(variants) - 1) / 2) * width, values, width, label=variant.name)
        ax.axhline(target, color="black", linestyle="--", linewidth=1, label="target")
        ax.set_xticks(x, CONDITIONS)
        ax.set_title(title, fontsize=10)
        if of:
            ax.set_ylim(0, 100)
        else:  # counts: whole numbers from 0 (an all-zero panel still reads as "none")
            ax.set_ylim(0, max(1, ax.get_ylim()[1]))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncol=len(labels))
    seeds = sorted({s["seed"] for s in summaries})
    title = f"Door benchmark: the real daemon, seeds {', '.join(map(str, seeds))}"
    fig.suptitle(title, fontsize=11, x=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report_body(
    summaries: list[dict], variants: list[Variant], command: str, detector: str, load: str
) -> str:
    from benchmarks._report import markdown_table

    seeds = sorted({s["seed"] for s in summaries})
    model = ", ".join(sorted({str(s["model_id"])[:12] for s in summaries}))
    not_enrolled = sorted({(s["seed"], line) for s in summaries for line in s["enrol_problems"]})
    visits = [r for s in summaries if s["variant"] == variants[0].name for r in s["visits"]]
    household = sum(r["household"] for r in visits)
    minutes = sum(s["frames"] / s["fps"] for s in summaries if s["variant"] == variants[0].name)
    return (
        f"Command: `{command}` ({load}). Seeds {', '.join(map(str, seeds))}: {household} household"
        f" and {len(visits) - household} stranger visits per variant, {minutes / 60:.1f} min of "
        f"door video at {summaries[0]['fps']:g} frames/s, played to the real daemon (`edge run`, "
        f"default config, shipped model {model}, {detector} detector) into a real mosquitto; household "
        "members enrolled from one LFW pairsDevTest photo each, visits show other photos of them. "
        "How clips are made: benchmarks/door_clips.py; how events are matched to visits and "
        "timed: benchmarks/door_score.py and benchmarks/bench_door.py. Per-seed summaries: "
        "benchmarks/results/door/.\n\n"
        + markdown_table(
            [
                "variant",
                "condition",
                "household recognised (of not muted)",
                "of those, first called unknown",
                "household muted by own cooldown",
                "household missed (called unknown / muted after a wrong name / wrong name only "
                "/ silent)",
                "wrong-name visits",
                "strangers unknown once",
                "strangers silent (muted by unknown cooldown)",
                "extra events (upgrades not counted)",
                "recognised: first face -> event ms (median / p95)",
                "unknown: ms (median / p95)",
            ],
            table_rows(summaries, variants),
        )
        + "\n\n"
        + TARGETS_TEXT
        + "\n\n"
        + markdown_table(
            [
                "variant",
                "targets met",
                "targets missed",
                "recognised p95 ms",
                "peak RSS MiB",
                "decisions muted by cooldown",
                "visits with a muted wrong name only",
                "events about no visit",
                "frames dropped",
                "frame reader behind (max s)",
                "frames processed",
            ],
            run_rows(summaries, variants),
        )
        + "".join(f"\n\nNot enrolled (seed {s}): {line}" for s, line in not_enrolled)
        + "\n\n![door benchmark](door_benchmark.png)\n"
    )


# -- main ---------------------------------------------------------------------------------------
def make_clip(seed: int, quick: bool, detector, out: Path) -> door_clips.ClipPlan:
    n_household, n_strangers, per_member = (4, 4, 2) if quick else (8, 12, 3)
    try:
        household, strangers = door_clips.choose_people(
            SHARED / "lfw-view1" / "pairsDevTest.txt",
            SHARED / "lfw",
            detector,
            seed,
            n_household,
            n_strangers,
        )
    except ValueError as e:
        raise BenchError(str(e)) from None
    plan = door_clips.plan_clip(household, strangers, seed, per_member)
    door_clips.write_clip(plan, SHARED / "lfw", detector, out)
    return plan


def progress_line(summary: dict, wall_s: float) -> str:
    t = door_score.totals(summary["visits"])
    return (
        f"seed {summary['seed']} {summary['variant']}: household {t['recognised']}/"
        f"{t['household_scored']} recognised ({t['first_called_unknown']} first called unknown),"
        f" {t['muted_own']} muted by own cooldown, {t['wrong_name_visits']} wrong-name visits, "
        "strangers "
        f"unknown once {t['unknown_once']}/{t['strangers']}, recognised ms (median / p95) "
        f"{door_score.latency_text(t['latency_recognised_ms'])}, peak RSS "
        f"{summary['daemon']['peak_rss_mib']:.0f} MiB, frame reader up to "
        f"{summary['reader_behind_s']:.1f} s behind, {wall_s:.0f} s"
    )


def run(args: argparse.Namespace, variants: list[Variant], out: Path) -> list[dict]:
    from edge.detectors import create_detector

    detector = create_detector()  # the default, as the daemon's config has no [detector]
    summaries = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        began = time.time()
        clip = Path(args.workdir) / f"seed{seed}"
        shutil.rmtree(clip, ignore_errors=True)
        plan = make_clip(seed, args.quick, detector, clip)
        problems = enrol(list(plan.household), SHARED / "lfw", clip / "gallery.npz")
        for line in problems:
            print(f"seed {seed}: not enrolled: {line}", file=sys.stderr)
        print(f"seed {seed}: clip and gallery in {time.time() - began:.0f} s", flush=True)
        for variant in variants:
            began = time.time()
            summary = run_variant(seed, variant, plan, clip, clip)
            summary["detector"] = detector.name
            summary["enrol_problems"] = problems
            (out / f"seed{seed}-{variant.name}.json").write_text(json.dumps(summary, indent=1))
            summaries.append(summary)
            print(progress_line(summary, time.time() - began), flush=True)
        if not args.keep:
            shutil.rmtree(clip / "frames")
    return summaries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="clips (one per seed)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument(
        "--variant",
        action="append",
        help="NAME:section.key=value,... (repeatable; default: "
        + " and ".join(repr(v) for v in DEFAULT_VARIANTS)
        + ")",
    )
    ap.add_argument(
        "--quick", action="store_true", help="12 visits per seed instead of 36 (~1.5 min clip)"
    )
    ap.add_argument("--workdir", help="where clips and logs go (default: a new temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the frames of every clip")
    ap.add_argument("--write", action="store_true", help="write docs and benchmarks/results")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from edge.daemon.config import parse
    from edge.errors import DoorfaceError
    from tests.edge.daemon.conftest import MOSQUITTO

    try:
        variants = [parse_variant(v) for v in args.variant or DEFAULT_VARIANTS]
        if len({v.name for v in variants}) != len(variants):
            raise BenchError("--variant: names must differ")
        for v in variants:  # unknown keys and wrong types now, not after the first clip
            parse(daemon_tables(Path(), Path(), 1883, Path(), 15.0, v), f"--variant {v.name}")
        for need in (Path(MOSQUITTO), SHARED / "lfw", SHARED / "lfw-view1" / "pairsDevTest.txt"):
            if not need.exists():
                raise BenchError(f"{need}: not found (mosquitto and ../shared/data are needed)")
        args.workdir = args.workdir or tempfile.mkdtemp(prefix="bench-door-")
        out = Path(args.workdir) / "results"
        out.mkdir(parents=True, exist_ok=True)
        load = f"load average {os.getloadavg()[0]:.1f} at the start"
        summaries = run(args, variants, out)
    except (BenchError, DoorfaceError) as e:
        print(f"bench_door: {e}", file=sys.stderr)
        return 1
    command = "python -m benchmarks.bench_door " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    body = report_body(summaries, variants, command, summaries[0]["detector"], load)
    print(body)
    if args.write:
        from benchmarks._report import write_section

        shutil.rmtree(RESULTS, ignore_errors=True)
        shutil.copytree(out, RESULTS)
        plot(summaries, variants, PLOT)
        write_section("door", "Door benchmark", body)
    print(f"summaries in {RESULTS if args.write else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
