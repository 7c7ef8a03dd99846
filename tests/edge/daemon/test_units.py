"""Config, tracker, decider, outbox, sd_notify, systemd unit: no broker, no model."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from edge.daemon import config
from edge.daemon.decide import Decider
from edge.daemon.outbox import Outbox
from edge.daemon.sdnotify import Notifier
from edge.daemon.strategies import Sample, track_embedding
from edge.daemon.tracker import Tracker, iou
from edge.errors import ConfigError

from .scripted import ALICE, BOB, face, matcher, stranger, view, walk

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "edge" / "config.example.toml"
UNIT = ROOT / "systemd" / "doorface-edge.service"


# -- config ------------------------------------------------------------------------------
def test_example_config_documents_exactly_the_defaults():
    assert dataclasses.asdict(config.load(EXAMPLE)) == dataclasses.asdict(config.Config())


def test_test_time_options_reach_the_daemons_embedder(tmp_path):
    from edge.daemon.loop import recognizer_from_config

    path = tmp_path / "c.toml"
    path.write_text("[recognition]\nzoom = true\nflip = false\n")
    embedder = recognizer_from_config(config.load(path)).embedder
    assert (embedder.zoom, embedder.flip, embedder.exposure) == (True, False, True)
    assert config.Config().recognition.zoom is False  # twice the time: opt-in


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[mqtt]\nport = "abc"', "config.toml: mqtt.port: must be an integer, got 'abc'"),
        ("[mqtt]\nprot = 1883", "config.toml: mqtt.prot: unknown key"),
        ("[mqtt]\ntls = 1", "config.toml: mqtt.tls: must be true or false, got 1"),
        ("[camera]\nfps = true", "config.toml: camera.fps: must be a number, got True"),
        ("[cameras]\nsource = 0", "config.toml: cameras: unknown key"),
        ("mqtt = 3", "config.toml: mqtt: must be a table, got 3"),
        ("[tracking]\niou = 1.5", "config.toml: tracking.iou: must be between 0 and 1"),
        ("[mqtt]\nport = 70000", "config.toml: mqtt.port: must be <= 65535"),
        ('[daemon]\ndevice_id = "a/b"', "config.toml: daemon.device_id:"),
        ("[mqtt\n", "config.toml: invalid TOML"),
        ("[mqtt]\npresent_off_s = 5", "config.toml: mqtt.present_off_s: moved to tracking."),
        ('[tracking]\ndecision = "vote2"', "config.toml: tracking.decision: must be one of"),
        ("[tracking]\nunknown_after_s = -1", "config.toml: tracking.unknown_after_s: must be"),
        # found by fuzzing: each of these passed check-config and then misbehaved in `run`
        ("[recognition]\nthreshold = nan", "config.toml: recognition.threshold: must be a finite"),
        ("[recognition]\nmargin = nan", "config.toml: recognition.margin: must be a finite"),
        ("[recognition]\nmargin = -0.1", "config.toml: recognition.margin: must be >= 0"),
        ("[recognition]\nthreads = 100000", "config.toml: recognition.threads: must be <= 64"),
        ("[cooldown]\nperson_s = inf", "config.toml: cooldown.person_s: must be a finite"),
        ("[snapshot]\nkeep = 0", "config.toml: snapshot.keep: must be > 0"),
        ("[snapshot]\nmax_side = -1", "config.toml: snapshot.max_side: must be > 0"),
        ("[camera]\nretry_max_s = -1.0", "config.toml: camera.retry_max_s: must be >= camera."),
        ("[camera]\nfps = -5", "config.toml: camera.fps: must be >= 0"),
        ("[tracking]\nmin_face_px = -1", "config.toml: tracking.min_face_px: must be >= 0"),
        ('[daemon]\ndevice_id = "a\\nb"', "config.toml: daemon.device_id:"),
    ],
)
def test_config_errors_name_the_key(tmp_path, toml, message):
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        config.load(path)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("key", sorted(config.RANGES))
def test_every_range_refuses_just_outside_and_names_its_key(key):
    low, low_allowed, high = config.RANGES[key]
    section, name = key.split(".")
    integer = isinstance(getattr(getattr(config.Config(), section), name), int)
    below = (low - 1 if integer else low - 0.5) if low_allowed else low
    bad = [below] + ([high + 1] if high is not None else [])
    for value in bad:
        with pytest.raises(ConfigError) as e:
            config.parse({section: {name: value}})
        assert str(e.value).startswith(f"config: {key}: must be "), str(e.value)
    config.parse({section: {name: low if low_allowed else low + 1}})  # the edge itself, or next


def test_a_config_that_is_not_a_regular_file_is_refused_without_reading(tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # reading it would block forever
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load(fifo)
    huge = tmp_path / "huge.toml"
    with open(huge, "wb") as f:
        f.truncate(config.MAX_CONFIG_BYTES + 1)
    with pytest.raises(ConfigError, match="not a config file"):
        config.load(huge)


def test_snapshots_prune_only_their_own_files(tmp_path):
    from edge.daemon.snapshot import Snapshots

    own = dict(save=True, in_event=False, max_bytes=65536, max_side=64)
    mine = tmp_path / "family.jpg"
    mine.write_bytes(b"not ours")
    snaps = Snapshots(str(tmp_path), keep=2, **own)
    face = np.full((64, 64, 3), 128, np.uint8)
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for i, event_id in enumerate(ids):
        snaps.handle(event_id, face)
        os.utime(tmp_path / f"{event_id}.jpg", (1000 + i, 1000 + i))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["family.jpg", f"{ids[2]}.jpg", f"{ids[3]}.jpg"])
    Snapshots(str(tmp_path), keep=0, **own).handle(str(uuid.uuid4()), face)  # keeps the newest
    assert mine.read_bytes() == b"not ours" and len(list(tmp_path.glob("*.jpg"))) == 2


def check_config(path, cwd=ROOT) -> subprocess.CompletedProcess:
    """``edge check-config PATH`` in a fresh interpreter, run from ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_check_config_cli_one_line_error_and_exit_2(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text('[mqtt]\nport = "abc"\n')
    r = check_config(bad)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "error: config.toml: mqtt.port: must be an integer, got 'abc'"
    )
    r = check_config(EXAMPLE)
    assert r.returncode == 0 and "OK" in r.stdout


@pytest.mark.parametrize(
    ("model", "ok"), [("doorface-small", True), ("dlib-resnet-v1", True), ("doorface-tiny", False)]
)
def test_check_config_takes_a_shipped_model_by_name(tmp_path, model, ok):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[recognition]\nmodel = "{model}"\n')
    r = check_config(cfg, cwd=tmp_path)  # so that no file there is called like a shipped model
    assert (r.returncode == 0) == ok, r.stderr
    if not ok:
        assert r.stderr.strip().splitlines()[-1] == (
            "error: config.toml: recognition.model: file not found: doorface-tiny (a path, or "
            "a shipped model: dlib-resnet-v1, doorface-small)"
        )


def test_check_config_loads_model_and_gallery_as_run_would(tmp_path):
    """What ``run`` would refuse or work around is said by check-config, naming the key."""
    from edge.gallery import STORED_CROP_SIZE, Gallery

    text_model = tmp_path / "model.tflite"
    text_model.write_text("not a model\n")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip")
    other = Gallery.create(tmp_path / "other.npz", "m" * 64, 32, 4)
    other.enroll(
        "Eileen",
        np.full((1, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), 90, np.uint8),
        np.eye(1, 4),
        ["x"],
    )
    other.save()
    blank = Gallery.create(tmp_path / "blank.npz", "m" * 64, 32, 4)
    blank.enroll(
        "Eileen",
        np.zeros((1, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8),
        np.eye(1, 4),
        ["x"],
    )
    blank.save()
    cases = {
        f'model = "{text_model}"': (2, f"recognition.model: {text_model}: not a TFLite model"),
        f'gallery = "{corrupt}"': (2, f"recognition.gallery: {corrupt}: "),
        f'gallery = "{blank.path}"': (2, "1 of its 1 samples have no stored face crop"),
        f'gallery = "{other.path}"': (0, "the daemon re-embeds its 1 stored crops for model"),
    }
    for line, (code, message) in cases.items():
        cfg = tmp_path / "config.toml"
        cfg.write_text(f"[recognition]\n{line}\n")
        r = check_config(cfg)
        assert r.returncode == code, r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert message in last, last
        assert last.startswith("warning: " if code == 0 else "error: config.toml: ")


def test_password_from_env_and_file_never_from_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOORFACE_TEST_PW", "pw1")
    assert config.MqttConfig(password_env="DOORFACE_TEST_PW").password() == "pw1"
    f = tmp_path / "pw"
    f.write_text("pw2\n")
    assert config.MqttConfig(password_file=str(f)).password() == "pw2"
    with pytest.raises(ConfigError, match="mqtt.password_env"):
        config.MqttConfig(password_env="DOORFACE_NOPE_NOT_SET").password()
    with pytest.raises(ConfigError, match="mqtt.password_file"):
        config.MqttConfig(password_file=str(tmp_path / "missing")).password()
    with pytest.raises(ConfigError, match="unknown key"):
        config.parse({"mqtt": {"password": "inline"}})


# -- tracker + decider -------------------------------------------------------------------
MATCHER = matcher()
DECISIONS = ["aggregate", "vote"]


def decider(decision="aggregate", person_s=60.0, unknown_s=30.0, **tracking):
    t = config.TrackingConfig(decision=decision, **tracking)
    return Decider(t, config.CooldownConfig(person_s, unknown_s), MATCHER.match, MATCHER.scoring)


def run_frames(dec, tracker, frames, t0=1000.0, dt=0.1):
    out = []
    for i, faces in enumerate(frames):
        ts = t0 + i * dt
        tracks, ended = tracker.update([f.face.box for f in faces], ts)
        for f, tr in zip(faces, tracks, strict=True):
            d = dec.observe(tr, dec.sample_from(f, ts), ts)
            out += [d] if d else []
        for tr in ended:
            d = dec.end(tr, ts)
            out += [d] if d else []
    return out


def alice(n, cos=0.55, x0=100, **kw):
    """n frames of alice, all the same view (so the track's mean is that view too); the
    default matches (threshold 0.5) but is not instant (0.6)."""
    return walk(MATCHER, [view(ALICE, cos)] * n, x0, **kw)


def nobody(n, who=0, x0=100, **kw):
    return walk(MATCHER, [view(stranger(who), 0.9, i) for i in range(n)], x0, **kw)


GAP = [[], [], []]  # Tracker(max_missed=1) ends the track


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_track_embedding_is_the_quality_weighted_mean():
    a, b = view(ALICE, 1.0), view(BOB, 1.0)
    m = MATCHER.match(a)
    samples = [Sample(m, a, 3.0, (0, 0, 1, 1), 0.0), Sample(m, b, 1.0, (0, 0, 1, 1), 0.0)]
    expected = (3 * a + b) / np.linalg.norm(3 * a + b)
    np.testing.assert_allclose(track_embedding(samples), expected, atol=1e-6)


@pytest.mark.parametrize("decision", DECISIONS)
def test_one_visit_is_one_event_after_confirm_frames(decision):
    events = run_frames(decider(decision, confirm_frames=3), Tracker(), alice(30))
    assert [(e.type, e.person, e.track_frames, e.upgrade) for e in events] == [
        ("recognized", "alice", 3, False)
    ]
    uuid.UUID(events[0].visit_id)


@pytest.mark.parametrize("decision", DECISIONS)
def test_a_single_lucky_frame_is_not_a_name(decision):
    frames = nobody(12)
    frames[3] = [face(MATCHER, frames[3][0].face.box, view(ALICE, 0.9))]
    dec = decider(decision, confirm_frames=3, unknown_frames=5)
    events = run_frames(dec, Tracker(max_missed=2), [*frames, [], [], [], []])
    assert [e.type for e in events] == ["unknown"]


@pytest.mark.parametrize("decision", DECISIONS)
def test_one_clear_frame_is_enough_when_nothing_contradicts_it(decision):
    events = run_frames(decider(decision, instant_above=0.1), Tracker(), alice(10, cos=0.65))
    assert [(e.type, e.person, e.track_frames) for e in events] == [("recognized", "alice", 1)]
    # just under the instant bar: the confirm rule (3 frames)
    events = run_frames(decider(decision, confirm_frames=3), Tracker(), alice(10, cos=0.59))
    assert [e.track_frames for e in events] == [3]
    # turned off: the default run of confirm_frames
    events = run_frames(decider(decision, instant_above=-1), Tracker(), alice(10, cos=0.9))
    assert [e.track_frames for e in events] == [config.TrackingConfig().confirm_frames] == [3]


@pytest.mark.parametrize("decision", DECISIONS)
def test_a_clear_frame_after_contrary_frames_still_needs_confirmation(decision):
    frames = nobody(2) + alice(8, cos=0.9, x0=108)
    events = run_frames(decider(decision, unknown_frames=9), Tracker(), frames)
    assert [(e.type, e.person) for e in events] == [("recognized", "alice")]
    assert events[0].track_frames >= 4  # not on the first clear frame (the third)


@pytest.mark.parametrize("decision", DECISIONS)
def test_an_unknown_visit_is_upgraded_with_the_same_visit_id(decision):
    # a poor first view (cosine 0.3), then alice seen well: unknown, then recognized
    frames = alice(5, 0.3) + alice(12, 0.9, x0=120)
    dec = decider(decision, unknown_frames=5)
    events = run_frames(dec, Tracker(max_missed=1), [*frames, *GAP])
    assert [(e.type, e.person, e.upgrade) for e in events] == [
        ("unknown", None, False),
        ("recognized", "alice", True),
    ]
    assert events[0].visit_id == events[1].visit_id
    assert dec.counters["upgrades"] == 1 and dec.counters["unknown"] == 1
    # upgrades off: the visit stays unknown
    events = run_frames(decider(decision, upgrade=False), Tracker(max_missed=1), frames)
    assert [e.type for e in events] == ["unknown"]


def test_waiting_longer_before_unknown_instead_of_upgrading():
    frames = alice(5, 0.3) + alice(12, 0.9, x0=120)
    dec = decider(unknown_after_s=1.0, upgrade=False)  # 10 frames at 0.1 s
    events = run_frames(dec, Tracker(max_missed=1), [*frames, *GAP])
    assert [(e.type, e.person, e.upgrade) for e in events] == [("recognized", "alice", False)]


def test_a_better_late_view_changes_the_outcome():
    """Ten views that match nobody, then four closer views of alice (another photo): the
    mean follows the better views; per-frame voting stays outvoted (share 0.38 < 0.6)."""
    far = alice(10, 0.3)
    near = walk(MATCHER, [view(ALICE, 0.9, noise=1)] * 4, x0=140, size=120)
    frames = [*far, *near, *GAP]
    events = run_frames(decider("aggregate"), Tracker(max_missed=1), frames)
    assert [(e.type, e.person, e.upgrade) for e in events] == [
        ("unknown", None, False),
        ("recognized", "alice", True),
    ]
    events = run_frames(decider("vote"), Tracker(max_missed=1), frames)
    assert [(e.type, e.person) for e in events] == [("unknown", None)]


@pytest.mark.parametrize("decision", DECISIONS)
def test_a_look_alike_stranger_with_lucky_frames_is_never_named(decision):
    """A stranger whose face is 0.45 from alice's template, seen with per-frame noise: some
    frames clear the threshold for alice on their own, the track never gives her name."""
    rng = np.random.default_rng(0)
    centre = view(ALICE, 0.45, noise=9)
    lucky, named = 0, []
    for _ in range(20):
        views = centre + rng.normal(0, 0.12, (40, centre.size)).astype(np.float32)
        views /= np.linalg.norm(views, axis=1, keepdims=True)
        lucky += sum(MATCHER.match(v).name == "alice" for v in views)
        events = run_frames(decider(decision), Tracker(max_missed=1), walk(MATCHER, views) + GAP)
        named += [e.person for e in events if e.person is not None]
    assert lucky >= 20  # the test has teeth: single frames do say "alice"
    assert named == []


def test_cooldown_per_person_and_an_upgrade_is_never_muted():
    dec = decider(person_s=60)
    tr = Tracker(max_missed=1)
    visits = alice(5) + GAP + alice(5) + GAP + walk(MATCHER, [view(BOB, 0.55)] * 5) + GAP
    events = run_frames(dec, tr, visits)
    assert [(e.type, e.person) for e in events] == [("recognized", "alice"), ("recognized", "bob")]
    assert dec.counters["cooldown_recognized"] == 1 and dec.decisions == 3
    dec0 = decider(person_s=0)
    assert len(run_frames(dec0, Tracker(max_missed=1), alice(5) + GAP + alice(5))) == 2
    # alice just announced, back with a poor first view: her upgrade corrects the unknown
    poor = alice(5, 0.3) + alice(12, 0.9, x0=120)
    events = run_frames(dec, tr, poor + GAP, t0=1010.0)
    assert [(e.type, e.person) for e in events] == [("unknown", None), ("recognized", "alice")]


def test_unknown_cooldown_is_per_face():
    same = nobody(6, who=0) + GAP + nobody(6, who=0) + GAP
    dec = decider(unknown_s=30)
    assert [e.type for e in run_frames(dec, Tracker(max_missed=1), same)] == ["unknown"]
    assert dec.counters["cooldown_unknown"] == 1
    other = nobody(6, who=0) + GAP + nobody(6, who=1) + GAP
    assert len(run_frames(decider(unknown_s=30), Tracker(max_missed=1), other)) == 2
    # the same face after the cooldown is reported again
    dec = decider(unknown_s=1.0)
    tr = Tracker(max_missed=1)
    first = run_frames(dec, tr, nobody(6) + GAP)
    again = run_frames(dec, tr, nobody(6) + GAP, t0=1002.0)
    assert len(first) == len(again) == 1


def test_blurry_and_tiny_faces_are_not_scored():
    dec = decider(min_face_px=40, min_sharpness=20)
    blurry = alice(10, sharp=5.0)
    tiny = alice(10, size=20)
    assert run_frames(dec, Tracker(), blurry) == []
    assert run_frames(dec, Tracker(), tiny) == []
    assert dec.counters["skipped_blurry"] == 10 and dec.counters["skipped_small"] == 10


@pytest.mark.parametrize("decision", DECISIONS)
def test_two_people_two_tracks(decision):
    frames = [
        [
            face(MATCHER, (50 + 2 * i, 100, 80, 80), view(ALICE, 0.55, i)),
            face(MATCHER, (400 - 2 * i, 100, 80, 80), view(BOB, 0.55, i)),
        ]
        for i in range(5)
    ]
    events = run_frames(decider(decision), Tracker(), frames)
    assert sorted(e.person for e in events) == ["alice", "bob"]
    assert len({e.visit_id for e in events}) == 2


# -- outbox ------------------------------------------------------------------------------
def test_outbox_survives_reopen_in_order_and_is_bounded(tmp_path):
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, max_rows=5)
    for i in range(8):
        assert ob.put(f"id{i}", "t", f"p{i}")
    assert ob.dropped == 3 and len(ob) == 5
    ob.close()  # "crash": reopen from disk
    ob = Outbox(path, max_rows=5)
    got = []
    while rows := ob.peek(1):
        got.append(rows[0][1])
        ob.ack(rows[0][0])
    assert got == ["id3", "id4", "id5", "id6", "id7"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert ob._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_outbox_disk_full_keeps_events_in_memory(tmp_path, caplog):
    ob = Outbox(tmp_path / "o.sqlite", memory_max=3)
    ob.put("id0", "t", "x")
    # Make the database "full" for real: SQLite raises "database or disk is full".
    ob._db.execute(f"PRAGMA max_page_count = {ob._db.execute('PRAGMA page_count').fetchone()[0]}")
    big = "y" * 20000
    for i in range(1, 6):
        assert ob.put(f"id{i}", "t", big) is False
    assert ob.write_errors == 5 and "disk is full" in caplog.text
    assert ob.dropped == 2  # memory queue bounded at 3
    got = []
    while rows := ob.peek(1):
        got.append(rows[0][1])
        ob.ack(rows[0][0])
    assert got == ["id0", "id3", "id4", "id5"]
    assert isinstance(sqlite3.OperationalError("x"), sqlite3.Error)


# -- sd_notify + systemd -----------------------------------------------------------------
def test_sd_notify_sends_datagrams(tmp_path, monkeypatch):
    addr = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(addr)
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", addr)
    n = Notifier()
    assert n.ready() and n.watchdog() and n.status("frames=3") and n.stopping()
    got = [server.recv(100).decode() for _ in range(4)]
    assert got == ["READY=1", "WATCHDOG=1", "STATUS=frames=3", "STOPPING=1"]
    n.close()
    server.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert Notifier().ready() is False


def test_systemd_unit_verifies_clean(tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing in CI (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    text = UNIT.read_text()
    for needed in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "User=doorface",
        "SupplementaryGroups=video",
        "StateDirectory=doorface",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "DeviceAllow=char-video4linux",
        "LoadCredential=",
    ):
        assert needed in text
    assert "PrivateDevices=yes" not in text and "password =" not in text.lower()
    # verify needs ExecStart to exist: point it at a real file, change nothing else.
    unit = tmp_path / "doorface-edge.service"
    unit.write_text(text.replace("/opt/doorface/.venv/bin/edge", "/bin/true"))
    r = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("pyver,numpy", [("3.11", "numpy<2"), ("3.13", "numpy")])
def test_edge_extra_resolves_to_aarch64_wheels(tmp_path, pyver, numpy):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--only-binary=:all:",
            # pip takes --platform literally: name every manylinux tag a Pi OS glibc accepts
            # (Bookworm has 2.36, Trixie 2.41); numpy<2 for aarch64 is only tagged 2_17/2014.
            *("--platform", "manylinux_2_36_aarch64"),
            *("--platform", "manylinux_2_28_aarch64"),
            *("--platform", "manylinux_2_27_aarch64"),
            *("--platform", "manylinux_2_17_aarch64"),
            *("--platform", "manylinux2014_aarch64"),
            "--python-version",
            pyver,
            "--target",
            str(tmp_path),
            "--report",
            str(tmp_path / "r.json"),
            "ai-edge-litert",
            numpy,
            "opencv-python-headless<5",
            "paho-mqtt>=2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    names = {
        i["metadata"]["name"].lower()
        for i in json.loads((tmp_path / "r.json").read_text())["install"]
    }
    assert {"ai-edge-litert", "numpy", "opencv-python-headless", "paho-mqtt"} <= names
