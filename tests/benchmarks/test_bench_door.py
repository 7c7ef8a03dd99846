"""The door benchmark: its clips (people, schedule, pixels, face sizes), its scoring of events
and muted decisions against visits (on a real Daemon's events and log too), and the daemon
config it writes (the defaults plus a variant)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_door, door_clips, door_score
from benchmarks.door_clips import Person, Visit
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
    assert_schedule(plan, rounds=3, strangers_per_round=4)
    assert 170 <= plan.frames / plan.fps <= 200  # ~3 min: the price of spaced members


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


def rounds_of(plan: door_clips.ClipPlan) -> list[list[Visit]]:
    """The plan's visits split at the gaps longer than 3 s (the quiet door between rounds)."""
    ordered = sorted(plan.visits, key=lambda v: v.first_frame)
    rounds = [[ordered[0]]]
    for a, b in itertools.pairwise(ordered):
        if b.first_frame - a.last_frame - 1 > 3 * plan.fps:
            rounds.append([])
        rounds[-1].append(b)
    return rounds


def assert_schedule(plan: door_clips.ClipPlan, rounds: int, strangers_per_round: int) -> None:
    """Members come back only after the default person cooldown plus its margin; rounds of
    every member once, strangers among them (two back to back, never three, members in runs
    of at most 4), consecutive visitors 1-3 s apart within a round."""
    from edge.daemon.config import Config

    assert plan.member_spacing_s == Config().cooldown.person_s + 5.0
    ordered = sorted(plan.visits, key=lambda v: v.first_frame)
    assert [v.index for v in ordered] == list(range(len(ordered)))
    assert ordered[0].first_frame >= 0 and ordered[-1].last_frame < plan.frames
    members = {v.person for v in ordered if v.household}
    for name in members:
        own = [v for v in ordered if v.person == name]
        spacing = [
            (b.first_frame - a.last_frame - 1) / plan.fps for a, b in itertools.pairwise(own)
        ]
        assert min(spacing) >= plan.member_spacing_s, (name, spacing)
    split = rounds_of(plan)
    assert len(split) == rounds
    for visits in split:
        assert sorted(v.person for v in visits if v.household) == sorted(members)
        assert sum(not v.household for v in visits) == strangers_per_round
        pattern = "".join("m" if v.household else "s" for v in visits)
        assert "ss" in pattern and "sss" not in pattern and "mmmmm" not in pattern, pattern
        gaps = [b.first_frame - a.last_frame - 1 for a, b in itertools.pairwise(visits)]
        assert min(gaps) >= plan.fps and max(gaps) <= 3 * plan.fps  # 1-3 s of empty door
    # the quiet door before a round is what its tightest member needs, no longer
    for before, after in itertools.pairwise(split):
        quiet = (after[0].first_frame - before[-1].last_frame - 1) / plan.fps
        tightest = min(
            (b.first_frame - a.last_frame - 1) / plan.fps
            for a in before
            for b in after
            if a.household and a.person == b.person
        )
        assert quiet > 3 and tightest - plan.member_spacing_s < 1 / plan.fps + 1e-9


def fake_people(n_household: int, n_strangers: int) -> tuple[list[Person], list[Person]]:
    household = [
        Person(f"m{i}", f"m{i}/0.jpg", (f"m{i}/1.jpg", f"m{i}/2.jpg")) for i in range(n_household)
    ]
    strangers = [Person(f"s{i}", None, (f"s{i}/0.jpg", f"s{i}/1.jpg")) for i in range(n_strangers)]
    return household, strangers


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("shape", "rounds"), [((8, 12), 3), ((4, 4), 2)])
def test_schedule_spaces_members_and_interleaves_strangers(seed, shape, rounds):
    """The benchmark's shape and --quick's, on several seeds (no photos needed)."""
    household, strangers = fake_people(*shape)
    plan = door_clips.plan_clip(household, strangers, seed, visits_per_member=rounds)
    assert_schedule(plan, rounds, len(strangers) // rounds)
    assert door_clips.plan_clip(household, strangers, seed, visits_per_member=rounds) == plan


def test_a_shorter_spacing_gives_a_shorter_clip():
    household, strangers = fake_people(8, 12)
    long = door_clips.plan_clip(household, strangers, 0)
    short = door_clips.plan_clip(household, strangers, 0, member_spacing_s=10.0)
    assert short.frames < long.frames - 40 * short.fps  # the quiet stretches were the wait
    assert [v.person for v in short.visits] == [v.person for v in long.visits]


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
    kind: str, person: str | None, frame: int | None, arrival: float, captured=CAPTURED, **more
) -> door_score.Event:
    """An event as the subscriber gets it; ``more``: visit_id, upgrade."""
    payload: dict = {"type": kind, "person": person, **more}
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
            event("recognized", "alice", 18, 1.9),  # ... then named (no visit_id: old daemon)
            event("recognized", "alice", 55, 5.5),  # a stranger named: wrong name
            event("unknown", None, 60, 6.0),
            event("recognized", "alice", 95, 9.6),  # bob named as alice: wrong, not recognised
            event("unknown", None, 135, 13.6),  # stranger2: unknown exactly once
        ],
        CAPTURED,
    )
    verdicts = [door_score.verdict(r) for r in records]
    assert [v["recognised"] for v in verdicts] == [True, False, False, False]
    assert [v["first_called_unknown"] for v in verdicts] == [True, False, False, False]
    assert [v["wrong_name"] for v in verdicts] == [False, True, True, False]
    assert [v["unknown_once"] for v in verdicts] == [False, False, False, True]
    assert [v["extra_events"] for v in verdicts] == [1, 1, 0, 0]  # no upgrade field: extra
    t = door_score.totals(records)
    assert (t["household"], t["household_scored"], t["recognised"]) == (2, 2, 1)
    assert (t["first_called_unknown"], t["muted_own"]) == (1, 0)
    assert (t["missed_unknown"], t["missed_silent"], t["missed_named_wrongly"]) == (0, 0, 1)
    assert (t["strangers"], t["unknown_once"], t["silent_strangers"]) == (2, 1, 0)
    assert (t["wrong_name_visits"], t["wrong_name_muted_visits"], t["extra_events"]) == (2, 0, 2)
    assert t["latency_recognised_ms"] == [pytest.approx(800.0)]  # alice's naming, not unknown
    assert sorted(t["latency_unknown_ms"]) == [pytest.approx(500.0), pytest.approx(900.0)]
    silent = door_score.totals(door_score.visit_records(VISITS, [], CAPTURED)[0])
    assert (silent["recognised"], silent["silent_strangers"], silent["unknown_once"]) == (0, 2, 0)
    assert (silent["missed_silent"], silent["strangers_muted"]) == (2, 0)


def test_an_upgrade_goes_with_its_visit_id_and_counts_as_first_called_unknown():
    """alice: ``unknown``, then the upgrade decided from a frame past the visit's end + slack
    (its visit_id still ties it to the visit); stranger1: ``unknown`` upgraded to bob."""
    records, loose = door_score.visit_records(
        VISITS,
        [
            event("unknown", None, 15, 1.6, visit_id="v1", upgrade=False),
            event("recognized", "alice", 33, 3.5, visit_id="v1", upgrade=True),
            event("unknown", None, 52, 5.4, visit_id="v2", upgrade=False),
            event("recognized", "bob", 60, 6.2, visit_id="v2", upgrade=True),
        ],
        CAPTURED,
    )
    assert not loose and [len(r["events"]) for r in records] == [2, 2, 0, 0]
    assert door_score.owner(VISITS, event("recognized", "alice", 33, 3.5), CAPTURED) is None
    alice, stranger = (door_score.verdict(r) for r in records[:2])
    assert alice["recognised"] and alice["first_called_unknown"] and not alice["wrong_name"]
    assert alice["extra_events"] == 0  # the upgrade is reported as "first called unknown"
    assert alice["latency_ms"] == pytest.approx(2400.0)  # to the upgrade: 3.5 s - 1.1 s
    assert stranger["wrong_name"] and not stranger["unknown_once"]
    t = door_score.totals(records)
    assert (t["recognised"], t["first_called_unknown"], t["wrong_name_visits"]) == (1, 1, 1)


def test_muted_decisions_get_their_own_columns():
    """alice named; stranger1 named bob (wrong). alice back, named but muted: her own earlier
    visit started the cooldown, so neither recognised nor missed. bob, muted: stranger1's
    wrong name started it, so missed. stranger2: muted by the unknown cooldown (silent,
    muted) and a muted "alice" (a wrong name only muted)."""
    visits = [
        Visit(0, "alice", True, "normal", (), 10, 29),
        Visit(1, "stranger1", False, "dark", (), 50, 69),
        Visit(2, "alice", True, "small", (), 90, 109),
        Visit(3, "bob", True, "side-lit", (), 130, 149),
        Visit(4, "stranger2", False, "normal", (), 170, 189),
    ]
    line = "INFO edge.daemon.decide: recognized suppressed: alice had an event 8.0 s ago"
    logged = [
        (START + 9.3, door_score.muted_decision(line)),  # -> alice's event at 1.3 s
        (START + 13.4, {"type": "recognized", "person": "bob", "age_s": 8.1}),  # -> 5.3 s
        (START + 17.4, {"type": "unknown", "person": None, "age_s": 3.0}),
        (START + 17.5, {"type": "recognized", "person": "alice", "age_s": 16.2}),  # -> 1.3 s
        (START + 0.5, {"type": "unknown", "person": None, "age_s": 1.0}),  # before any visit
    ]
    events = [event("recognized", "alice", 12, 1.3), event("recognized", "bob", 52, 5.3)]
    records, loose = door_score.visit_records(visits, events, CAPTURED, logged)
    assert [len(r["muted"]) for r in records] == [0, 0, 1, 1, 2]
    assert [m.get("muted_by") for r in records for m in r["muted"]] == [
        "alice",
        "stranger1",
        None,  # an unknown: no starter looked for
        "alice",
    ]
    assert records[2]["muted"][0]["latency_ms"] == pytest.approx(9300 - 9100)
    assert loose == [
        {"type": "unknown", "person": None, "age_s": 1.0, "arrival_s": 0.4, "muted": True}
    ]
    v = [door_score.verdict(r) for r in records]
    assert v[2]["muted_own"] and not v[2]["recognised"] and v[2]["latency_ms"] is None
    assert v[3]["missed_muted_after_wrong"] and not v[3]["muted_own"]
    assert v[1]["wrong_name"] and v[4]["wrong_name_muted"] and not v[4]["wrong_name"]
    assert v[4]["silent"] and v[4]["stranger_muted"]
    t = door_score.totals(records)
    assert (t["household"], t["household_scored"], t["recognised"], t["muted_own"]) == (3, 2, 1, 1)
    assert [t[k] for k in door_score.HOUSEHOLD_VERDICTS[3:]] == [0, 1, 0, 0]
    assert (t["strangers"], t["silent_strangers"], t["strangers_muted"]) == (2, 1, 1)
    assert (t["wrong_name_visits"], t["wrong_name_muted_visits"]) == (1, 1)
    # an age that points at no event with that name: no starter known
    far = {"type": "recognized", "person": "alice", "age_s": 3.0}
    assert (
        door_score.cooldown_starter(far, START + 9.3, [(START + 1.3, "alice", 0)], records) is None
    )


def test_muted_decision_reads_only_suppression_lines():
    line = (
        "INFO edge.daemon.decide: recognized suppressed: Jean_Chretien had an event 12.5 s ago"
        " (score=0.912 track=7 visit=13c3b1ab-0e33-4e35-8477-7c7ad81a7c1f)"
    )
    assert door_score.muted_decision(line) == {
        "type": "recognized",
        "person": "Jean_Chretien",
        "age_s": 12.5,
    }
    line = (
        "INFO edge.daemon.decide: unknown suppressed: the same unknown face had an event 3.0 s ago"
    )
    assert door_score.muted_decision(line) == {"type": "unknown", "person": None, "age_s": 3.0}
    for other in ("INFO edge.daemon.loop: event recognized alice score=0.8 track=1 visit=x", ""):
        assert door_score.muted_decision(other) is None


class ListSink:
    """The daemon's sink, keeping what it is sent."""

    def __init__(self) -> None:
        self.events: list[tuple[float, dict]] = []

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> None:
        pass

    def send_event(self, ev: dict) -> None:
        self.events.append((time.time(), ev))

    def set_state(self, state: dict) -> None:
        pass

    def stats(self) -> dict:
        return {}


def test_a_real_daemons_events_and_log_are_scored(caplog):
    """A real Daemon (default config, scripted faces): alice poorly seen then well (unknown,
    then its upgrade), alice again at once (muted by her cooldown), a stranger. Checks the
    event fields and log wording the scoring relies on, with the daemon's log format."""
    from edge.daemon.config import Config
    from edge.daemon.grabber import HandFed
    from edge.daemon.loop import Daemon
    from edge.sources.base import Frame
    from tests.edge.daemon.scripted import ALICE, ScriptedRecognizer, matcher, stranger, view, walk

    m = matcher()
    gap: list[list] = [[], [], []]
    scripted = [
        walk(m, [view(ALICE, 0.3)] * 5) + walk(m, [view(ALICE, 0.9)] * 8, x0=120),
        walk(m, [view(ALICE, 0.9)] * 6),
        walk(m, [view(stranger(0), 0.9)] * 6),
    ]
    cfg = Config()
    cfg.tracking.max_missed_frames = 1
    cfg.motion.enabled = False  # scripted faces on blank frames: no motion to see
    recognizer, sink = ScriptedRecognizer(m), ListSink()
    daemon = Daemon(cfg, recognizer=recognizer, sink=sink, grabber=HandFed())
    visits, frames = [], [face for visit in scripted for face in [*visit, *gap]]
    for i, faces in enumerate(scripted):
        first = sum(len(v) + len(gap) for v in scripted[:i])
        visits.append(
            Visit(
                i,
                "stranger" if i == 2 else "alice",
                i < 2,
                "normal",
                (),
                first,
                first + len(faces) - 1,
            )
        )
    captured = []
    caplog.set_level(logging.INFO, logger="edge.daemon.decide")
    for i, faces in enumerate(frames):
        recognizer.frames.append(faces)
        time.sleep(0.005)  # frames some ms apart: events carry millisecond timestamps
        captured.append(time.time())
        daemon.handle_frame(Frame(np.zeros((1, 1, 3), np.uint8), captured[-1], i, "scripted"))
    daemon_format = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    muted = [
        (r.created, door_score.muted_decision(daemon_format.format(r))) for r in caplog.records
    ]
    muted = [(t, d) for t, d in muted if d is not None]
    assert [d["person"] for _, d in muted] == ["alice"]
    records, loose = door_score.visit_records(visits, sink.events, captured, muted)
    assert not loose
    assert [[(e["type"], e["upgrade"]) for e in r["events"]] for r in records] == [
        [("unknown", False), ("recognized", True)],
        [],
        [("unknown", False)],
    ]
    assert records[0]["events"][0]["visit_id"] == records[0]["events"][1]["visit_id"]
    v = [door_score.verdict(r) for r in records]
    assert v[0]["recognised"] and v[0]["first_called_unknown"] and v[0]["extra_events"] == 0
    assert records[1]["muted"][0]["muted_by"] == "alice"  # her upgrade started the cooldown
    assert v[1]["muted_own"] and v[2]["unknown_once"]


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
