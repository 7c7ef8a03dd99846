"""Config, tracker, decider, outbox, sd_notify, systemd unit: no broker, no model."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.daemon import config
from edge.daemon.decide import Decider
from edge.daemon.outbox import Outbox
from edge.daemon.sdnotify import Notifier
from edge.daemon.tracker import Tracker, iou
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "edge" / "config.example.toml"
UNIT = ROOT / "systemd" / "doorface-edge.service"


# -- config ------------------------------------------------------------------------------
def test_example_config_documents_exactly_the_defaults():
    assert dataclasses.asdict(config.load(EXAMPLE)) == dataclasses.asdict(config.Config())


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
    ],
)
def test_config_errors_name_the_key(tmp_path, toml, message):
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        config.load(path)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_check_config_cli_one_line_error_and_exit_2(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text('[mqtt]\nport = "abc"\n')
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "error: config.toml: mqtt.port: must be an integer, got 'abc'"
    )
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "check-config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0 and "OK" in r.stdout


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
def obs(box, name, score=0.55, reason=None, sharp=100.0):
    """A face result; the default score matches (threshold 0.5) but is not instant (0.6)."""
    reason = reason or ("match" if name else "below_threshold")
    match = SimpleNamespace(name=name, score=score, second=0.1, threshold=0.5, reason=reason)
    return SimpleNamespace(face=SimpleNamespace(box=box), match=match, sharpness=sharp, crop=None)


def run_frames(decider, tracker, frames, t0=1000.0, dt=0.1):
    out = []
    for i, faces in enumerate(frames):
        ts = t0 + i * dt
        tracks, ended = tracker.update([f.face.box for f in faces], ts)
        for f, tr in zip(faces, tracks, strict=True):
            d = decider.observe(tr, decider.sample_from(f, ts), ts)
            out += [d] if d else []
        for tr in ended:
            d = decider.end(tr, ts)
            out += [d] if d else []
    return out


def moving(n, name, x0=100, **kw):
    return [[obs((x0 + 4 * i, 100, 80, 80), name, **kw)] for i in range(n)]


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_one_visit_is_one_event_after_confirm_frames():
    dec, tr = Decider(confirm_frames=3), Tracker()
    events = run_frames(dec, tr, moving(30, "alice"))
    assert len(events) == 1
    e = events[0]
    assert (e.type, e.person, e.track_frames) == ("recognized", "alice", 3)


def test_a_single_lucky_frame_is_not_a_name():
    frames = moving(12, None)
    frames[3] = [obs(frames[3][0].face.box, "alice", 0.9)]
    dec, tr = Decider(confirm_frames=3, unknown_frames=5), Tracker(max_missed=2)
    events = run_frames(dec, tr, [*frames, [], [], [], []])
    assert [e.type for e in events] == ["unknown"]


def test_one_clear_frame_is_enough_when_nothing_contradicts_it():
    dec = Decider(confirm_frames=3, instant_above=0.1)
    events = run_frames(dec, Tracker(), moving(10, "alice", score=0.65))
    assert [(e.type, e.person, e.track_frames) for e in events] == [("recognized", "alice", 1)]
    # just under the instant bar: the confirm rule (3 frames)
    events = run_frames(Decider(confirm_frames=3), Tracker(), moving(10, "alice", score=0.59))
    assert [e.track_frames for e in events] == [3]
    # turned off
    events = run_frames(Decider(instant_above=-1), Tracker(), moving(10, "alice", score=0.9))
    assert [e.track_frames for e in events] == [3]


def test_a_clear_frame_after_contrary_frames_still_needs_confirmation():
    frames = moving(2, None) + moving(8, "alice", x0=108, score=0.9)
    events = run_frames(Decider(confirm_frames=3, unknown_frames=9), Tracker(), frames)
    assert [(e.type, e.person, e.track_frames) for e in events] == [("recognized", "alice", 5)]


def test_cooldown_per_person_and_unknown():
    dec = Decider(confirm_frames=3, person_cooldown_s=60, unknown_cooldown_s=30)
    tr = Tracker(max_missed=1)
    gap = [[], [], []]
    visits = moving(5, "alice") + gap + moving(5, "alice") + gap + moving(5, "bob") + gap
    events = run_frames(dec, tr, visits)
    assert [(e.type, e.person) for e in events] == [("recognized", "alice"), ("recognized", "bob")]
    assert dec.counters["cooldown_recognized"] == 1
    dec0 = Decider(confirm_frames=3, person_cooldown_s=0)
    assert (
        len(run_frames(dec0, Tracker(max_missed=1), moving(5, "alice") + gap + moving(5, "alice")))
        == 2
    )
    stranger = moving(6, None) + gap
    dec_u = Decider(unknown_frames=5, unknown_cooldown_s=30)
    events = run_frames(dec_u, Tracker(max_missed=1), stranger + stranger)
    assert [e.type for e in events] == ["unknown"]


def test_blurry_and_tiny_faces_are_not_scored():
    dec, tr = Decider(confirm_frames=3, min_face_px=40, min_sharpness=20), Tracker()
    blurry = moving(10, "alice", sharp=5.0)
    tiny = [[obs((100 + i, 100, 20, 20), "alice")] for i in range(10)]
    assert run_frames(dec, tr, blurry) == []
    assert run_frames(dec, Tracker(), tiny) == []
    assert dec.counters["skipped_blurry"] == 10 and dec.counters["skipped_small"] == 10


def test_two_people_two_tracks():
    frames = [
        [obs((50 + 2 * i, 100, 80, 80), "alice"), obs((400 - 2 * i, 100, 80, 80), "bob")]
        for i in range(5)
    ]
    events = run_frames(Decider(confirm_frames=3), Tracker(), frames)
    assert sorted(e.person for e in events) == ["alice", "bob"]


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
