"""The motion gate: what it lets through to the detector, its config, and a daemon run with it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.daemon import config
from edge.daemon.loop import Daemon
from edge.daemon.motion import MotionGate
from edge.errors import ConfigError

from .door import config_file
from .test_loop import ListSink

THRESHOLD, EVERY_S = 0.003, 1.0


def doorway(rng: np.random.Generator, face_x: int | None = None) -> np.ndarray:
    """An empty 640x480 doorway with sensor noise (sigma 4), or a face-sized patch at face_x."""
    frame = np.full((480, 640, 3), 90, np.int16)
    frame[:, 250:390] = 60  # the door
    if face_x is not None:
        frame[120:220, face_x : face_x + 80] = (150, 170, 200)  # a skin-coloured 80 px face
    noise = rng.normal(0, 4, frame.shape).round().astype(np.int16)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def test_static_empty_scene_is_skipped_until_detect_every_s():
    rng = np.random.default_rng(0)
    gate = MotionGate(THRESHOLD, EVERY_S)
    assert gate.should_detect(doorway(rng), 0.0, tracking=False)  # the first frame: reference
    skipped = [gate.should_detect(doorway(rng), i / 15, tracking=False) for i in range(1, 15)]
    assert not any(skipped)  # noise alone is not motion
    assert gate.should_detect(doorway(rng), 15 / 15, tracking=False)  # 1 s: detect anyway
    assert not gate.should_detect(doorway(rng), 16 / 15, tracking=False)  # timer restarted


def test_a_face_walking_in_is_detected_on_its_first_frame():
    rng = np.random.default_rng(1)
    gate = MotionGate(THRESHOLD, EVERY_S)
    gate.should_detect(doorway(rng), 0.0, tracking=False)
    assert not gate.should_detect(doorway(rng), 0.1, tracking=False)
    assert gate.should_detect(doorway(rng, face_x=560), 0.2, tracking=False)  # at the edge


def test_slow_change_adds_up_against_the_last_detected_frame():
    """Each step alone is below the threshold; against the reference it is not."""
    rng = np.random.default_rng(2)
    gate = MotionGate(THRESHOLD, 100.0)
    base = doorway(rng)
    gate.should_detect(base, 0.0, tracking=False)
    frames = []
    for step in range(1, 40):
        frame = base.copy()
        frame[100 : 100 + step, 100:200] = 230  # a shape growing a row a frame
        frames.append(gate.should_detect(frame, step / 15, tracking=False))
    assert frames[0] is False and any(frames)


def test_keeps_detecting_every_frame_while_a_track_is_alive():
    """A person standing still: the scene does not change, but their track keeps it detected."""
    rng = np.random.default_rng(3)
    gate = MotionGate(THRESHOLD, EVERY_S)
    still = doorway(rng, face_x=300)
    gate.should_detect(still, 0.0, tracking=False)
    assert all(gate.should_detect(still, i / 15, tracking=True) for i in range(1, 10))
    assert not gate.should_detect(still, 10 / 15, tracking=False)  # track ended, nothing moves


@pytest.mark.parametrize(
    ("motion", "key"),
    [
        ({"threshold": 0.0}, "motion.threshold: must be between 0 and 1"),
        ({"threshold": 1.5}, "motion.threshold: must be between 0 and 1"),
        ({"detect_every_s": 0}, "motion.detect_every_s: must be > 0"),
        ({"enabled": "yes"}, "motion.enabled: must be true or false"),
        ({"every": 1.0}, "motion.every: unknown key"),
    ],
)
def test_config_errors_name_the_key(motion, key):
    with pytest.raises(ConfigError, match=key):
        config.parse({"motion": motion}, "c.toml")


def test_config_defaults_turn_the_gate_on():
    cfg = config.parse({})
    assert cfg.motion.enabled and cfg.motion.threshold == THRESHOLD
    assert cfg.motion.detect_every_s == 2.0  # docs/BENCHMARKS.md, "Idle CPU"


def _events_and_gated(tmp_path, door_video, enabled: bool) -> tuple[list[tuple], int]:
    extra = f"[cooldown]\nperson_s = 0.0\n[motion]\nenabled = {str(enabled).lower()}\n"
    cfg = config.load(config_file(tmp_path, door_video, extra))
    sink = ListSink()
    daemon = Daemon(cfg, sink=sink)
    daemon.run()  # the video ends: exit_on_end
    assert sink.states[-1]["frames_gated"] == daemon.frames_gated
    return [(e["type"], e["person"], e["track_frames"]) for e in sink.events], daemon.frames_gated


def test_daemon_with_the_gate_reports_the_same_visits_on_the_door_video(tmp_path, door_video):
    """Both visits of the door video, with as many frames each, with the gate on as off; the
    empty frames after the first visit's track ended were kept from the detector."""
    on, gated = _events_and_gated(tmp_path, door_video, True)
    off, not_gated = _events_and_gated(tmp_path, door_video, False)
    assert [e[:2] for e in on] == [("recognized", "astronaut")] * 2
    assert on == off
    assert gated > 0 and not_gated == 0


def test_the_idle_benchmarks_empty_doorway_is_skipped_between_periodic_detections(tmp_path):
    """benchmarks/bench_idle.py measures what it claims: its clip, decoded, is idle to the gate
    (JPEG noise included), so only the first frame and one a second reach the detector."""
    import cv2

    from benchmarks.bench_idle import empty_doorway_video

    video = empty_doorway_video(tmp_path / "empty.avi", seconds=3, fps=15)
    cap = cv2.VideoCapture(str(video))
    gate, detected, i = MotionGate(THRESHOLD, EVERY_S), [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if gate.should_detect(frame, i / 15, tracking=False):
            detected.append(i)
        i += 1
    cap.release()
    assert i == 45 and detected == [0, 15, 30]


def test_the_gate_is_idle_after_a_quiet_second_and_the_first_change_ends_it():
    rng = np.random.default_rng(4)
    gate = MotionGate(THRESHOLD, EVERY_S)
    gate.should_detect(doorway(rng), 0.0, tracking=False)
    assert not gate.idle(0.0)
    for i in range(1, 31):  # 2 s of empty doorway; the periodic detection at 1 s is not motion
        gate.should_detect(doorway(rng), i / 15, tracking=False)
    assert gate.idle(30 / 15)
    assert gate.should_detect(doorway(rng, face_x=300), 31 / 15, tracking=False)
    assert not gate.idle(31 / 15)
    still = doorway(rng, face_x=300)
    for i in range(32, 62):  # a person standing still keeps a track alive: never idle
        gate.should_detect(still, i / 15, tracking=True)
    assert not gate.idle(61 / 15)


def test_config_idle_stride_defaults_to_every_other_frame_and_is_checked():
    assert config.parse({}).motion.idle_stride == 2
    with pytest.raises(ConfigError, match="motion.idle_stride: must be >= 1"):
        config.parse({"motion": {"idle_stride": 0}}, "c.toml")


def test_a_paced_daemon_reads_half_the_empty_doorway_and_still_sees_both_visits(
    tmp_path, door_video
):
    """Idle stride on a paced video (a camera's rate): empty frames are skipped by the source,
    the clip still plays at its own speed, and both visits give their events."""
    import cv2

    from benchmarks.bench_idle import empty_doorway_video

    empty = empty_doorway_video(tmp_path / "empty.avi", seconds=3, fps=15)
    video = tmp_path / "empty_then_door.avi"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    for path in (empty, door_video["video"]):
        cap = cv2.VideoCapture(str(path))
        while (frame := cap.read()[1]) is not None:
            out.write(frame)
        cap.release()
    out.release()
    extra = "[cooldown]\nperson_s = 0.0\n"
    cfg = config.load(config_file(tmp_path, door_video, extra, camera=str(video)))
    cfg.camera.exit_on_end, cfg.camera.fps = True, 20.0
    sink = ListSink()
    daemon = Daemon(cfg, sink=sink)
    began = time.monotonic()
    daemon.run()
    assert time.monotonic() - began >= (45 + 65) / 20 - 0.2  # paced by frame index, not halved
    assert [(e["type"], e["person"]) for e in sink.events] == [("recognized", "astronaut")] * 2
    skipped = sink.states[-1]["idle_skipped_frames"]
    assert 8 <= skipped <= (45 - 20) // 2 + 1  # after a quiet second (20 frames), every other
    assert daemon.frames + skipped == 45 + 65
