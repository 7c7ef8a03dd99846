"""Visits end to end: a real Daemon publishing to a real mosquitto, fed scripted faces.

Detection and embedding are scripted (:mod:`.scripted`); matching, aggregation, the decider,
cooldowns, the outbox and MQTT are the real ones. Covers the upgrade of an ``unknown`` visit
to ``recognized`` with the same ``visit_id``, cooldowns by identity (two strangers seconds
apart are two events, the same stranger twice is one) and a better late view.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from edge.daemon.config import Config
from edge.daemon.grabber import HandFed
from edge.daemon.loop import Daemon
from edge.sources import Frame

from .helpers import validate_event
from .scripted import ALICE, ScriptedRecognizer, matcher, stranger, view, walk

pytestmark = pytest.mark.mqtt

EVENTS, STATE = "doorface/door1/events", "doorface/door1/state"
GAP = [[], [], []]  # tracking.max_missed_frames = 1: the track ends
MATCHER = matcher()


def run_daemon(tmp_path, port: int, frames: list, **tracking) -> Daemon:
    cfg = Config()
    cfg.daemon.device_id = "door1"
    cfg.mqtt.host, cfg.mqtt.port = "127.0.0.1", port
    cfg.outbox.path = str(tmp_path / "outbox.sqlite")
    cfg.tracking.max_missed_frames = 1
    cfg.motion.enabled = False  # scripted faces on blank frames: no motion to see
    for key, value in tracking.items():
        setattr(cfg.tracking, key, value)
    recognizer = ScriptedRecognizer(MATCHER)
    daemon = Daemon(cfg, recognizer=recognizer, grabber=HandFed())
    daemon.sink.start()
    end = time.monotonic() + 10
    while not daemon.sink.connected:  # stop() flushes the outbox only over a live connection
        assert time.monotonic() < end, "the daemon did not connect to the broker"
        time.sleep(0.02)
    t0 = time.time()
    for i, faces in enumerate(frames):
        recognizer.frames.append(faces)
        daemon.handle_frame(Frame(np.zeros((1, 1, 3), np.uint8), t0 + 0.1 * i, i, "scripted"))
    daemon.shutdown()  # flushes the outbox to the broker
    return daemon


def faces_of(face: np.ndarray, cos: float, n: int, noise: int = 0, x0: int = 100, size=80):
    return walk(MATCHER, [view(face, cos, noise)] * n, x0, size)


def test_unknown_visit_upgraded_to_recognized_with_the_same_visit_id(tmp_path, broker, recorder):
    rec = recorder(broker.port, [EVENTS, STATE])
    poor_then_good = faces_of(ALICE, 0.3, 5) + faces_of(ALICE, 0.9, 8, x0=120) + GAP
    run_daemon(tmp_path, broker.port, poor_then_good)
    got = rec.wait_count(EVENTS, 2)
    for ev in got:
        validate_event(ev)
    assert [(e["type"], e["person"], e["upgrade"]) for e in got] == [
        ("unknown", None, False),
        ("recognized", "alice", True),
    ]
    assert got[0]["visit_id"] == got[1]["visit_id"] and got[0]["id"] != got[1]["id"]
    rec.wait_for(lambda m: m[0] == STATE and json.loads(m[1])["last_person"] == "alice")
    state = json.loads([p for t, p, _ in rec.messages if t == STATE][-1])
    assert state["decider_upgrades"] == 1 and state["last_event_id"] == got[1]["id"]


def test_two_strangers_seconds_apart_are_two_events_the_same_one_twice_is_one(
    tmp_path, broker, recorder, caplog
):
    caplog.set_level("INFO", logger="edge.daemon.decide")
    rec = recorder(broker.port, [EVENTS, STATE])
    a, b = stranger(0), stranger(1)
    visits = faces_of(a, 0.9, 6) + GAP + faces_of(b, 0.9, 6) + GAP + faces_of(a, 0.8, 6) + GAP
    daemon = run_daemon(tmp_path, broker.port, visits)
    rec.wait_count(EVENTS, 2)
    time.sleep(0.5)  # nothing else arrives
    got = [json.loads(p) for t, p, _ in rec.messages if t == EVENTS]
    assert [e["type"] for e in got] == ["unknown", "unknown"]
    assert len({e["visit_id"] for e in got}) == 2
    # the suppressed return of stranger a is counted in the retained state
    assert daemon.decider.counters["cooldown_unknown"] == 1
    # the muted decision is logged as an event would be, with its score, track and visit
    (muted,) = [r.getMessage() for r in caplog.records if "suppressed" in r.getMessage()]
    assert muted.startswith("unknown suppressed: the same unknown face had an event ")
    assert re.search(r"s ago \(score=-?[0-9.]+ track=[0-9]+ visit=[0-9a-f-]{36}\)$", muted)
    rec.wait_for(lambda m: m[0] == STATE and json.loads(m[1]).get("decider_cooldown_unknown") == 1)


@pytest.mark.parametrize(("decision", "expected"), [("aggregate", 2), ("vote", 1)])
def test_a_better_late_view_upgrades_the_visit(tmp_path, broker, recorder, decision, expected):
    """Ten views matching nobody, then four closer ones of alice from another photo: the
    track's mean follows them (upgrade); per-frame voting stays outvoted by the early frames."""
    rec = recorder(broker.port, [EVENTS])
    late = faces_of(ALICE, 0.3, 10) + faces_of(ALICE, 0.9, 4, noise=1, x0=140, size=120) + GAP
    run_daemon(tmp_path, broker.port, late, decision=decision)
    rec.wait_count(EVENTS, expected)
    time.sleep(0.5)  # nothing else arrives
    got = [json.loads(p) for t, p, _ in rec.messages if t == EVENTS]
    assert [(e["type"], e["person"]) for e in got] == [("unknown", None), ("recognized", "alice")][
        :expected
    ]
    assert len({e["visit_id"] for e in got}) == 1
