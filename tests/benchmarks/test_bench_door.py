"""The door benchmark: its clips (people, schedule, pixels, face sizes), its scoring of events
against visits, and the daemon config it writes (the defaults plus a variant)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_door, door_clips, door_score
from benchmarks.door_clips import Visit
from trainer.data import pair_file_people


# -- clips (LFW from ../shared) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def detector():
    from edge.detectors import create_detector

    return create_detector()  # the daemon's default, as in the benchmark


@pytest.fixture(scope="module")
def people(detector, pairs_dev_test, lfw_dir):
    return door_clips.choose_people(pairs_dev_test, lfw_dir, detector, seed=0)


@pytest.fixture(scope="module")
def plan(people):
    return door_clips.plan_clip(*people, seed=0)


@pytest.mark.shared_data
def test_plan_has_the_benchmarks_visits_balanced(plan, people, pairs_dev_test):
    household, strangers = people
    visits = plan.visits
    assert (len(household), len(strangers)) == (8, 12)
    names = {p.name for p in household} | {p.name for p in strangers}
    assert len(names) == 20 and names <= pair_file_people(pairs_dev_test)
    assert sum(v.household for v in visits) == 24 and sum(not v.household for v in visits) == 12
    assert Counter(v.condition for v in visits if v.household) == dict.fromkeys(
        door_clips.CONDITIONS, 6
    )
    assert Counter(v.condition for v in visits if not v.household) == dict.fromkeys(
        door_clips.CONDITIONS, 3
    )
    assert Counter(v.person for v in visits if v.household) == {p.name: 3 for p in household}
    for member in household:  # visits never show the enrolment photo
        assert member.enrol not in {p for v in visits if v.person == member.name for p in v.photos}
    ordered = sorted(visits, key=lambda v: v.first_frame)
    gaps = [b.first_frame - a.last_frame - 1 for a, b in itertools.pairwise(ordered)]
    assert min(gaps) >= plan.fps and max(gaps) <= 3 * plan.fps  # 1-3 s of empty door
    assert ordered[-1].last_frame < plan.frames
    # strangers sometimes follow each other, seconds apart
    assert any(not a.household and not b.household for a, b in itertools.pairwise(ordered))


@pytest.mark.shared_data
def test_clips_are_deterministic_for_a_seed(
    plan, people, detector, pairs_dev_test, lfw_dir, tmp_path
):
    household, strangers = people
    assert door_clips.plan_clip(household, strangers, seed=0) == plan
    assert door_clips.plan_clip(household, strangers, seed=1) != plan
    assert door_clips.choose_people(pairs_dev_test, lfw_dir, detector, 0) == people
    tiny = door_clips.plan_clip(household[:1], strangers[:1], seed=3, visits_per_member=1)

    def digest(out: Path) -> list[str]:
        frames, truth = door_clips.write_clip(tiny, lfw_dir, detector, out)
        files = sorted(frames.iterdir())
        assert len(files) == tiny.frames
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in [*files, truth]]

    assert digest(tmp_path / "a") == digest(tmp_path / "b")


@pytest.mark.shared_data
def test_small_faces_are_40_to_60_px_for_the_detector(plan, detector, lfw_dir):
    from edge.image import load_image

    background = door_clips.door_background(np.random.default_rng(plan.seed))
    small = [v for v in plan.visits if v.condition == "small"]
    heads = {p: door_clips.head(load_image(lfw_dir / p), detector) for v in small for p in v.photos}
    sizes, frames = [], 0
    for visit in small:
        for frame in door_clips.visit_frames(visit, background, heads, plan.seed):
            frames += 1
            sizes += [f.size for f in detector.detect(frame)]
    assert len(sizes) >= 0.9 * frames  # one face per frame, rarely missed
    assert min(sizes) >= 40 and max(sizes) <= 60, (min(sizes), max(sizes))


# -- scoring (pure) ---------------------------------------------------------------------------
START, FPS = 1000.0, 10.0
CAPTURED = [START + (i + 1) / FPS for i in range(200)]  # a reader that keeps pace
VISITS = [
    Visit(0, "alice", True, "normal", ("a.jpg",), 10, 29),
    Visit(1, "stranger1", False, "dark", ("s.jpg",), 50, 69),
    Visit(2, "bob", True, "small", ("b.jpg",), 90, 109),
    Visit(3, "stranger2", False, "side-lit", ("t.jpg",), 130, 149),
]


def event(
    kind: str, person: str | None, frame: int | None, arrival: float, captured=CAPTURED
) -> door_score.Event:
    payload: dict = {"type": kind, "person": person}
    if frame is not None:
        ts = captured[frame] + 0.004  # stamped a little late
        payload["frame_timestamp"] = dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()
    return START + arrival, payload


def test_events_go_to_the_visit_of_their_deciding_frame():
    events = [
        event("recognized", "alice", 12, 1.35),  # frame 12 -> visit 0
        event("unknown", None, 69, 7.1),  # last frame of visit 1
        event("unknown", None, 40, 4.2),  # the empty door between visits: no visit
        event("recognized", "carol", 111, 11.3),  # 2 frames after visit 2 (read late)
        event("unknown", None, None, 13.2),  # no frame info: by arrival -> visit 3
    ]
    assert [door_score.owner(VISITS, e, CAPTURED) for e in events] == [0, 1, None, 2, 3]
    records, loose = door_score.visit_records(VISITS, events, CAPTURED)
    assert [len(r["events"]) for r in records] == [1, 1, 1, 1]
    assert loose == [{"type": "unknown", "person": None, "frame": 40, "arrival_s": 4.1}]
    # latency: arrival - capture time of the visit's first face frame (10 -> START + 1.1 s)
    assert records[0]["events"][0]["latency_ms"] == pytest.approx(250.0)
    assert [door_score.frame_at(CAPTURED[i] + d, CAPTURED) for i, d in ((0, -1), (77, 0.04))] == [
        0,
        77,
    ]


def test_a_reader_that_fell_behind_shifts_frames_not_visits():
    """Frames 40 on reached the daemon 3 s late: its events carry those late times."""
    late = [t + (3.0 if i >= 40 else 0.0) for i, t in enumerate(CAPTURED)]
    events = [event("recognized", "bob", 95, 13.0, late), event("unknown", None, None, 8.5, late)]
    records, loose = door_score.visit_records(VISITS, events, late)
    assert [len(r["events"]) for r in records] == [0, 1, 1, 0] and not loose
    # latency from when the late first face frame reached the daemon (frame 90: START + 12.1)
    assert records[2]["events"][0]["latency_ms"] == pytest.approx(900.0)
    assert records[1]["events"][0]["latency_ms"] == pytest.approx(400.0)  # 50: START + 8.1
    # on the nominal clock the same event would have fallen in the gap after visit 3 (frame 125)
    assert door_score.owner(VISITS, events[0], CAPTURED) is None


def test_verdicts_and_totals():
    records, _ = door_score.visit_records(
        VISITS,
        [
            event("unknown", None, 14, 1.5),  # alice called unknown first ...
            event("recognized", "alice", 18, 1.9),  # ... then named
            event("recognized", "alice", 55, 5.5),  # a stranger named: wrong name
            event("unknown", None, 60, 6.0),
            event("recognized", "alice", 95, 9.6),  # bob named as alice: wrong, not recognised
            event("unknown", None, 135, 13.6),  # stranger2: unknown exactly once
        ],
        CAPTURED,
    )
    verdicts = [door_score.verdict(r) for r in records]
    assert [v["recognised"] for v in verdicts] == [True, False, False, False]
    assert [v["wrong_name"] for v in verdicts] == [False, True, True, False]
    assert [v["unknown_once"] for v in verdicts] == [False, False, False, True]
    assert [v["extra_events"] for v in verdicts] == [1, 1, 0, 0]
    t = door_score.totals(records)
    assert (t["household"], t["recognised"], t["household_unknown"]) == (2, 1, 1)
    assert (t["strangers"], t["unknown_once"], t["silent_strangers"]) == (2, 1, 0)
    assert (t["wrong_name_visits"], t["extra_events"]) == (2, 2)
    assert t["latency_recognised_ms"] == [pytest.approx(800.0)]  # alice's naming, not unknown
    assert sorted(t["latency_unknown_ms"]) == [pytest.approx(500.0), pytest.approx(900.0)]
    silent = door_score.totals(door_score.visit_records(VISITS, [], CAPTURED)[0])
    assert (silent["recognised"], silent["silent_strangers"], silent["unknown_once"]) == (0, 2, 0)


def test_percentile_is_nearest_rank():
    values = list(range(1, 21))
    assert door_score.percentile(values, 0.95) == 19
    assert door_score.percentile(values, 0.5) == 10
    assert door_score.percentile([7.0], 0.95) == 7.0
    assert door_score.latency_text([]) == "-"


# -- the daemon's config -------------------------------------------------------------------
def test_config_is_the_default_plus_paths_and_the_variant(tmp_path):
    from edge.daemon.config import Config, load

    variant = bench_door.parse_variant("nocooldown:cooldown.unknown_s=0,cooldown.person_s=0")
    tables = bench_door.daemon_tables(
        tmp_path / "frames", tmp_path / "g.npz", 2000, tmp_path / "o.sqlite", 15.0, variant
    )
    path = tmp_path / "c.toml"
    path.write_text(bench_door.toml_text(tables))
    cfg, default = load(path), Config()
    assert (cfg.cooldown.unknown_s, cfg.cooldown.person_s) == (0.0, 0.0)
    assert (cfg.camera.fps, cfg.camera.exit_on_end, cfg.mqtt.port) == (15.0, True, 2000)
    assert cfg.tracking == default.tracking and cfg.recognition.threshold == -1.0
    assert bench_door.parse_variant("old:").overrides == {}
    assert bench_door.parse_variant("v:tracking.decision=vote").overrides == {
        "tracking": {"decision": "vote"}
    }
    for bad in ("", ":a.b=1", "x:nodot=1", "x:a.b"):
        with pytest.raises(bench_door.BenchError):
            bench_door.parse_variant(bad)


def test_capture_times_follow_the_reader(tmp_path):
    """Frame 0 read: the clock starts; frame 2 read late: its read time; frame 1 never read
    (or read on time): its slot."""
    files = [tmp_path / f"{i:06d}.jpg" for i in range(3)]
    for f in files:
        f.write_bytes(b"x" * 100)
    bench_door.rearm_access_times(files)
    launched = time.time() - 0.01
    files[0].read_bytes()
    time.sleep(0.5)
    files[2].read_bytes()
    captured = bench_door.capture_times(files, 10.0, launched)
    start = captured[0] - 0.1  # frame 0 is due one period after the clock starts
    assert start >= launched and captured[1] == pytest.approx(start + 0.2)
    assert captured[2] - start >= 0.45  # read 0.5 s after frame 0, due at +0.3 s
    bench_door.rearm_access_times(files)
    with pytest.raises(bench_door.BenchError, match="noatime"):
        bench_door.capture_times(files, 10.0, time.time() + 5)
