"""Decision rules replayed over many door clips: the daemon's tracker and decider, no clock.

The door benchmark (bench_door.py) plays each clip to the real daemon in real time, 3.5 min
per seed and variant, so it sees 3 seeds: 36 strangers, where a rule that names 1% of
strangers wrongly shows 0 wrong names more often than not. This benchmark replays the same
kind of clips over many seeds, in seconds per variant:

1. Per seed, the clip and gallery exactly as bench_door makes them (door_clips, ``edge
   enroll``), then every frame once through the daemon's own recognizer
   (``recognizer_from_config`` of the default config: shipped model, YuNet, flip and exposure
   as shipped). Each face's box, sharpness and embedding are kept (``faces-<digest>.npz``,
   named by the settings that made them). A variant that changes how faces are found or
   embedded (``[detector]``, ``recognition.flip/exposure/zoom/max_faces``) is recorded once
   more with its own settings, from the same frames.
2. Per variant, the faces are matched with the variant's threshold and margin and fed frame by
   frame, on the clip's clock (frame ``i`` at ``i / fps``), to the real
   :class:`edge.daemon.tracker.Tracker` and :class:`edge.daemon.decide.Decider` with the
   variant's ``[tracking]`` and ``[cooldown]``; every decision becomes the daemon's event
   (``build_event``), muted decisions are read from the decider's log, and door_score scores
   them exactly as bench_door does.

What it leaves out: the motion gate (bench_door measured it losing nothing), frames a busy
daemon drops, and time: a latency here is clip time from the visit's first face to the frame
the decision was made on (no compute, no MQTT), a lower bound of bench_door's. Checked: seeds
0-2 give bench_door's counts of the real daemon: ``aggregate`` 55/72 recognised (17/12/15/11
normal/small/dark/side-lit), ``vote`` 50/72 (15/11/14/10), 0 wrong names, 36/36 strangers
once (bench_door's vote run of 2026-12-01 and its aggregate runs of 2026-12-02; a run on a
busy machine that drops frames can differ by a visit or two).

    .venv/bin/python -m benchmarks.bench_decisions --seeds 26 --first-seed 10 --write \\
        --variant default: --variant 'vote:tracking.decision="vote"'
    .venv/bin/python -m benchmarks.bench_decisions --seeds 26 --first-seed 10 \\
        --variant default: --variant norefine:detector.refine_px=0

A candidate encoder is gated the same way before it ships: ``--model cand.tflite`` enrols,
records and scores with it (its threshold, cohort and confidence from its manifest), in a
workdir of its own, and is never written into the docs. 312 strangers instead of bench_door's
36 is what lets "0 wrong names" mean something for a new model.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks import door_clips, door_score
from benchmarks.bench_door import (
    SHARED,
    BenchError,
    Variant,
    daemon_tables,
    enrol,
    make_clip,
    parse_variant,
    table_rows,
)

if TYPE_CHECKING:
    from edge.scoring import Scoring

T0 = 1.8e9  # the clip's clock starts here (any wall-clock time; only differences matter)
#: What a variant may change and is only replayed: what acts after the embedding.
REPLAYABLE = {"tracking": None, "cooldown": None, "recognition": {"threshold", "margin"}}
#: What a variant may change at the price of a recording of its own (every frame through its
#: detector and embedder once, kept beside the default's): what makes the faces. The model is
#: not among them: a candidate encoder is ``--model``, in a workdir of its own (its gallery).
RECORDED = {"detector": None, "recognition": {"flip", "exposure", "zoom", "max_faces"}}


@dataclass(frozen=True)
class Seen:
    """One recorded face, shaped like the FaceResult the decider reads."""

    box: tuple[int, int, int, int]
    sharpness: float
    embedding: np.ndarray
    match: object
    crop: None = None

    @property
    def face(self) -> Seen:  # the decider reads ``result.face.box``
        return self


def _allowed(table: dict[str, set[str] | None], section: str, key: str) -> bool:
    return section in table and (table[section] is None or key in table[section])


def check_replayable(variant: Variant) -> None:
    for section, table in variant.overrides.items():
        for key in table:
            if not (_allowed(REPLAYABLE, section, key) or _allowed(RECORDED, section, key)):
                raise BenchError(
                    f"--variant {variant.name}: {section}.{key} is not replayed; a variant varies "
                    "[tracking], [cooldown], recognition.threshold/margin (replayed), [detector] "
                    "and recognition.flip/exposure/zoom/max_faces (recorded again); a model is "
                    "--model, the rest needs bench_door"
                )


def with_model(variant: Variant, model: str) -> Variant:
    """The variant run on ``model`` (an encoder .tflite; "" = the shipped one)."""
    if not model:
        return variant
    overrides = {section: dict(table) for section, table in variant.overrides.items()}
    overrides.setdefault("recognition", {})["model"] = model
    return Variant(variant.name, overrides)


@functools.cache
def model_id_of(model: str) -> str:
    from edge.embedder import Embedder
    from edge.pipeline import resolve_model

    return Embedder(resolve_model(model or None)).model_id


def config_of(variant: Variant, clip: Path):
    from edge.daemon.config import parse

    tables = daemon_tables(clip / "frames", clip / "gallery.npz", 1883, clip / "o", 15.0, variant)
    return parse(tables, f"--variant {variant.name}")


# -- recording ------------------------------------------------------------------------------
def recorded_with(variant: Variant) -> str:
    """The settings that made a variant's faces (its [detector] and the recorded
    ``recognition`` keys, defaults included), as canonical JSON: variants that agree on them
    share one recording, and a change of default is a new recording, never a stale one."""
    cfg = config_of(variant, Path())
    settings = {
        "detector": dataclasses.asdict(cfg.detector),
        "recognition": {k: getattr(cfg.recognition, k) for k in sorted(RECORDED["recognition"])},
    }
    return json.dumps(settings, sort_keys=True)


def faces_file(clip: Path, variant: Variant) -> Path:
    digest = hashlib.sha256(recorded_with(variant).encode()).hexdigest()[:12]
    return clip / f"faces-{digest}.npz"


def record(clip: Path, plan: door_clips.ClipPlan, variant: Variant) -> None:
    """Every frame of the clip through the recognizer of the variant's config (its model,
    detector and embedding options) -> :func:`faces_file`."""
    import cv2

    from edge.daemon.loop import recognizer_from_config

    recognizer = recognizer_from_config(config_of(variant, clip))
    frame, boxes, sharp, emb = [], [], [], []
    for i in range(plan.frames):
        image = cv2.imread(str(clip / "frames" / f"{i:06d}.jpg"))
        for r in recognizer.recognize_faces(image):
            frame.append(i)
            boxes.append([int(v) for v in r.face.box])
            sharp.append(r.sharpness)
            emb.append(r.embedding)
    np.savez(
        faces_file(clip, variant),
        frame=np.array(frame, np.int32),
        box=np.array(boxes, np.int32).reshape(-1, 4),
        sharpness=np.array(sharp, np.float32),
        embedding=np.array(emb, np.float32).reshape(len(frame), -1),
        model_id=recognizer.embedder.model_id,
    )


# -- replay ---------------------------------------------------------------------------------
@functools.cache
def model_scoring(model: str) -> Scoring:
    """The model's scoring (threshold, cohort, confidence), loaded once per model, not once per
    seed and variant."""
    from edge.embedder import Embedder
    from edge.pipeline import resolve_model

    return Embedder(resolve_model(model or None)).scoring


class _MutedLog(logging.Handler):
    """Collects the decider's "suppressed" lines, timed on the clip's clock."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.now = T0
        self.muted: list[door_score.Muted] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = door_score.muted_decision(record.getMessage())
        if found is not None:
            self.muted.append((self.now, found))


@contextlib.contextmanager
def muted_log() -> Iterator[_MutedLog]:
    handler = _MutedLog()
    logger = logging.getLogger("edge.daemon.decide")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def replay(clip: Path, plan: door_clips.ClipPlan, variant: Variant) -> dict:
    """The variant's decisions on one recorded clip: bench_door's summary shape."""
    from edge.daemon.decide import Decider
    from edge.daemon.events import build_event
    from edge.daemon.tracker import Tracker
    from edge.gallery import Gallery
    from edge.matching import Matcher

    cfg = config_of(variant, clip)
    faces = np.load(faces_file(clip, variant))
    model_id = str(faces["model_id"])
    scoring = model_scoring(cfg.recognition.model)
    threshold = None if cfg.recognition.threshold < 0 else cfg.recognition.threshold
    matcher = Matcher(
        Gallery.load(clip / "gallery.npz"),
        scoring.with_threshold(threshold),
        cfg.recognition.margin,
    )
    matches = matcher.match_many(faces["embedding"]) if len(faces["frame"]) else []
    by_frame: dict[int, list[Seen]] = {}
    for k, i in enumerate(faces["frame"].tolist()):
        box = tuple(faces["box"][k].tolist())
        seen = Seen(box, float(faces["sharpness"][k]), faces["embedding"][k], matches[k])
        by_frame.setdefault(i, []).append(seen)
    tracker = Tracker(cfg.tracking.iou, cfg.tracking.max_missed_frames)
    decider = Decider(cfg.tracking, cfg.cooldown, matcher.match, matcher.scoring)
    captured = [T0 + i / plan.fps for i in range(plan.frames)]
    events: list[door_score.Event] = []
    with muted_log() as log:
        for i, now in enumerate(captured):
            log.now = now
            seen = by_frame.get(i, [])
            tracks, ended = tracker.update([s.box for s in seen], now)
            decisions = [
                decider.observe(t, decider.sample_from(s, now), now)
                for s, t in zip(seen, tracks, strict=True)
            ]
            decisions += [decider.end(t, now) for t in ended]
            if i == plan.frames - 1:
                decisions += [decider.end(t, now) for t in tracker.flush()]
            events += [
                (now, build_event(d, device_id="replay", camera="door", model_id=model_id))
                for d in decisions
                if d is not None
            ]
    records, loose = door_score.visit_records(plan.visits, events, captured, log.muted)
    return {
        "seed": plan.seed,
        "variant": variant.name,
        "model_id": model_id,
        "visits": records,
        "unattributed": loose,
    }


# -- main ---------------------------------------------------------------------------------------
def prepare(
    seed: int, workdir: Path, variants: list[Variant], model: str = ""
) -> tuple[Path, door_clips.ClipPlan]:
    """The seed's clip, gallery (enrolled with ``model``) and every recording the variants
    need: made once, reused from ``workdir``; a workdir of another model is refused. The
    frames are made again (same seed, same pixels) only when a recording is missing."""
    from edge.detectors import create_detector

    clip = workdir / f"seed{seed}"
    plan_file = clip / "plan.json"
    if (clip / "gallery.npz").is_file() and plan_file.is_file():
        for done in clip.glob("faces-*.npz"):
            recorded_by = str(np.load(done)["model_id"])
            if recorded_by != model_id_of(model):
                raise BenchError(
                    f"{clip}: recorded with model {recorded_by}, not {model_id_of(model)} "
                    "(give each --model its own --workdir)"
                )
        plan = door_clips.ClipPlan.from_json(json.loads(plan_file.read_text()))
    else:
        shutil.rmtree(clip, ignore_errors=True)
        plan = make_clip(seed, False, create_detector(), clip)
        problems = enrol(list(plan.household), SHARED / "lfw", clip / "gallery.npz", model)
        if problems:
            raise BenchError(f"seed {seed}: not enrolled: {'; '.join(problems)}")
        plan_file.write_text(json.dumps(plan.to_json()))
    wanted = {faces_file(clip, v): v for v in variants}  # variants that agree share a file
    missing = [v for path, v in wanted.items() if not path.is_file()]
    if missing:
        if not (clip / "frames").is_dir():
            make_clip(seed, False, create_detector(), clip)
        for variant in missing:
            record(clip, plan, variant)
    shutil.rmtree(clip / "frames", ignore_errors=True)
    return clip, plan


def report_body(
    summaries: list[dict], variants: list[Variant], command: str, model: str = ""
) -> str:
    from benchmarks._report import markdown_table

    seeds = sorted({s["seed"] for s in summaries})
    first = [r for s in summaries if s["variant"] == variants[0].name for r in s["visits"]]
    household = sum(r["household"] for r in first)
    wrong = [
        f"{v.name}: seed {s['seed']} {r['condition']} {r['person']} named {e['person']}"
        for v in variants
        for s in summaries
        if s["variant"] == v.name
        for r in s["visits"]
        for e in r["events"]
        if e["person"] is not None and e["person"] != (r["person"] if r["household"] else None)
    ]
    return (
        f"Command: `{command}`. Seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} clips): {household} "
        f"household and {len(first) - household} stranger visits per variant, made as the door "
        "benchmark makes them; every frame through the default daemon's recognizer once"
        + (f" (model {model})" if model else "")
        + ", then "
        "each variant's threshold, tracker and decider replayed on the clip's clock "
        "(benchmarks/bench_decisions.py: no motion gate, no dropped frames; latencies are clip "
        "time to the deciding frame, without compute or MQTT, so lower bounds).\n\n"
        + markdown_table(
            [
                "variant",
                "condition",
                "household recognised",
                "of those, first called unknown",
                "household muted by own cooldown",
                "household missed (unknown / muted after wrong / wrong only / silent)",
                "wrong-name visits",
                "strangers unknown once",
                "strangers silent (muted)",
                "extra events",
                "recognised: first face -> deciding frame ms (median / p95)",
                "unknown: ms (median / p95)",
            ],
            table_rows(summaries, variants),
        )
        + "\n\nWrong names: "
        + ("; ".join(wrong) or "none")
        + ".\n"
    )


def progress_line(seed: int, seconds: float, summaries: list[dict]) -> str:
    parts = []
    for s in summaries:
        t = door_score.totals(s["visits"])
        parts.append(
            f"{s['variant']} {t['recognised']}/{t['household_scored']} recognised, "
            f"{t['wrong_name_visits']} wrong"
        )
    return f"seed {seed} ({seconds:.0f} s): " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    from edge.errors import DoorfaceError

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=26, help="clips (one per seed)")
    ap.add_argument("--first-seed", type=int, default=10, help="bench_door uses 0-2")
    ap.add_argument("--variant", action="append", help="NAME:section.key=value,... (repeatable)")
    ap.add_argument("--workdir", help="clips, galleries and recorded faces (reused when present)")
    ap.add_argument(
        "--model",
        default="",
        help="record and replay with this encoder .tflite instead of the shipped one "
        "(a candidate; its own --workdir; not with --write)",
    )
    ap.add_argument("--write", action="store_true", help="write the docs/BENCHMARKS.md section")
    args = ap.parse_args(argv)
    try:
        if args.model and args.write:
            raise BenchError("--write documents the shipped model; run a --model without it")
        variants = [parse_variant(v) for v in args.variant or ["default:"]]
        if len({v.name for v in variants}) != len(variants):
            raise BenchError("--variant: names must differ")
        for v in variants:
            check_replayable(v)
        variants = [with_model(v, args.model) for v in variants]
        for v in variants:
            config_of(v, Path())  # unknown keys and wrong types now, not after recording
        model_id_of(args.model)  # a missing or broken model now, not after the first clip
        for need in (SHARED / "lfw", SHARED / "lfw-view1" / "pairsDevTest.txt"):
            if not need.exists():
                raise BenchError(f"{need}: not found (../shared/data is needed)")
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-decisions-"))
        summaries = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            began = time.time()
            clip, plan = prepare(seed, workdir, variants, args.model)
            for v in variants:
                summaries.append(replay(clip, plan, v))
            print(progress_line(seed, time.time() - began, summaries[-len(variants) :]))
    except (BenchError, DoorfaceError) as e:
        print(f"bench_decisions: {e}", file=sys.stderr)
        return 1

    command = "python -m benchmarks.bench_decisions " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    body = report_body(summaries, variants, command, args.model)
    print(body)
    if args.write:
        from benchmarks._report import write_section

        write_section("decisions", "Decision rules replayed over many door clips", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
