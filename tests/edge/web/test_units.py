"""The web app's parts on their own: password hash, token, rate limit, sessions, visits store,
clustering, the live picture."""

from __future__ import annotations

import datetime as dt
import os
import stat
import uuid

import cv2
import numpy as np
import pytest

from edge.errors import ConfigError
from edge.scoring import Scoring
from edge.web import auth
from edge.web.clusters import cluster_faces
from edge.web.live import LiveFace, LiveView
from edge.web.sessions import SessionStore
from edge.web.visits import VisitStore


def test_password_hash_is_salted_scrypt_and_verifies():
    line = auth.hash_password("correct horse")
    assert line.startswith("scrypt$14$8$1$") and "correct" not in line
    assert line != auth.hash_password("correct horse")  # salted
    assert auth.verify_password("correct horse", line)
    assert not auth.verify_password("correct horsE", line)
    for broken in (
        "",
        "plain",
        "scrypt$14$8$1$!!$!!",
        "bcrypt$1$2$3$4$5",
        "scrypt$40$8$1$AA==$AA==",
    ):
        assert not auth.verify_password("correct horse", broken)


def test_secrets_are_written_0600_and_short_passwords_refused(tmp_path):
    pw = tmp_path / "state" / "web_password"
    with pytest.raises(ConfigError, match="at least 8"):
        auth.write_password(pw, "short")
    assert auth.read_password_hash(pw) is None
    auth.write_password(pw, "long enough")
    assert stat.S_IMODE(os.stat(pw).st_mode) == 0o600
    assert auth.verify_password("long enough", auth.read_password_hash(pw))
    token_file = tmp_path / "state" / "web_token"
    token = auth.ensure_token(token_file)
    assert len(token) >= 40 and stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert auth.ensure_token(token_file) == token
    assert auth.tokens_equal(token, token) and not auth.tokens_equal(token, token[:-1] + "x")


def test_secret_files_that_cannot_be_used_are_one_line_config_errors(tmp_path):
    (tmp_path / "afile").write_text("x")
    os.mkfifo(tmp_path / "pipe")  # reading it would block forever
    (tmp_path / "binary").write_bytes(b"\xff\xfe" * 20)
    (tmp_path / "huge").write_bytes(b"x" * 1_000_000)  # not a password hash: not read
    cases = [
        (lambda: auth.new_token(tmp_path), f"web.token_file: cannot write {tmp_path}: "),
        (
            lambda: auth.new_token(tmp_path / "afile" / "token"),
            f"web.token_file: cannot write {tmp_path / 'afile' / 'token'}: "
            f"{tmp_path / 'afile'} is not a folder",
        ),
        (
            lambda: auth.ensure_token(tmp_path / "pipe"),
            f"web.token_file: {tmp_path / 'pipe'}: not a regular file (a named pipe)",
        ),
        (
            lambda: auth.read_password_hash(tmp_path / "huge"),
            f"web.password_file: {tmp_path / 'huge'}: 1 MB is over the 64 kB file size limit",
        ),
        (
            lambda: auth.read_password_hash(tmp_path / "binary"),
            f"web.password_file: {tmp_path / 'binary'} is not UTF-8 text",
        ),
        (
            lambda: auth.write_password(tmp_path / "pw", "\udcff\udcfe12345678"),
            "web password: not UTF-8 text; nothing changed",
        ),
    ]
    for call, message in cases:
        with pytest.raises(ConfigError) as e:
            call()
        assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert not (tmp_path / "pw").exists()


def test_a_short_token_someone_wrote_is_refused_not_replaced(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("hunter2-hunter2\n")
    with pytest.raises(ConfigError, match=r"web.token_file: .*15 characters, at least 32"):
        auth.ensure_token(token_file)
    assert token_file.read_text() == "hunter2-hunter2\n"
    token_file.write_text("")  # an empty file (touched by an installer): a token is made
    assert len(auth.ensure_token(token_file)) >= 40


def test_a_new_token_replaces_the_old_one(tmp_path):
    token_file = tmp_path / "token"
    old = auth.ensure_token(token_file)
    new = auth.new_token(token_file)
    assert new != old and auth.ensure_token(token_file) == new
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600


def test_login_limiter_per_client_and_in_total():
    limiter = auth.LoginLimiter(per_client=3, total=5, window_s=100)
    for t in range(3):
        assert limiter.wait_s("a", now=t) == 0
        limiter.failed("a", now=t)
    assert limiter.wait_s("a", now=3) == pytest.approx(97)
    assert limiter.wait_s("b", now=3) == 0
    assert limiter.wait_s("a", now=100.5) == 0  # the first failure aged out
    limiter.succeeded("a")
    for t in range(5):
        limiter.failed(f"c{t}", now=110 + t)
    assert limiter.wait_s("fresh", now=115) > 0  # the total locks everyone out


def test_sessions_expire_rotate_and_are_bounded(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("edge.web.sessions.time.monotonic", lambda: clock[0])
    store = SessionStore(idle_s=60, max_sessions=3)
    anonymous = store.new()
    signed = store.new(signed_in=True, replacing=anonymous.id)
    assert store.get(anonymous.id) is None and store.get(signed.id) is signed
    assert signed.csrf_ok(signed.csrf) and not signed.csrf_ok("") and not signed.csrf_ok(None)
    clock[0] += 61
    assert store.get(signed.id) is None
    ids = [store.new().id for _ in range(5)]
    assert len(store) == 3 and store.get(ids[0]) is None and store.get(ids[-1]) is not None
    # a flood of sign-in page loads (anonymous sessions) signs nobody out
    signed = store.new(signed_in=True)
    flood = [store.new().id for _ in range(50)]
    assert len(store) == 3 and store.get(signed.id) is signed
    assert store.get(flood[0]) is None and store.get(flood[-1]) is not None
    # when only signed-in sessions are left, the least recently used goes
    others = [store.new(signed_in=True) for _ in range(2)]
    store.new(signed_in=True)
    assert store.get(signed.id) is None and all(store.get(o.id) is o for o in others)


def _event(visit: str, kind: str, person: str | None, when: dt.datetime) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "visit_id": visit,
        "type": kind,
        "person": person,
        "score": 0.7,
        "timestamp": when.isoformat(),
        "camera": "door",
        "model_id": "m1",
    }


def test_visit_store_upgrades_filters_and_purges(tmp_path):
    store = VisitStore(tmp_path / "visits.sqlite", retention_days=7)
    assert stat.S_IMODE(os.stat(tmp_path / "visits.sqlite").st_mode) == 0o600
    now = dt.datetime.now(dt.UTC)
    e = np.ones(4, np.float32) / 2
    store.record(_event("v1", "unknown", None, now), None, b"png1", e)
    store.record(_event("v1", "recognized", "ann", now), 0.9, b"png2", e)  # the upgrade
    store.record(_event("v2", "unknown", None, now), None, b"png3", e)
    store.record(_event("old", "unknown", None, now - dt.timedelta(days=8)), None, b"png4", e)
    assert [v.visit_id for v in store.recent()] in (["v1", "v2"], ["v2", "v1"])
    v1 = store.get("v1")
    assert (v1.type, v1.person, v1.confidence) == ("recognized", "ann", 0.9)
    assert store.crop_png("v1") == b"png2" and store.crop_png("old") is None
    assert [v.visit_id for v in store.recent(person="ann")] == ["v1"]
    assert [v.visit_id for v in store.recent(unknown=True)] == ["v2"]
    assert [f.visit_id for f in store.unnamed_unknown("m1")] == ["v2"]
    assert store.unnamed_unknown("another-model") == []
    store.mark_named(["v2"], "bob")
    store.mark_not("v1", "ann")
    assert store.unnamed_unknown("m1") == [] and store.get("v1").not_person == "ann"
    np.testing.assert_array_equal(store.faces(["v2", "nope"])[0].embedding, e)
    assert store.purge() == 1  # "old", past the retention (never read above)
    assert store.purge(now=now.timestamp() + 8 * 86400) == 2
    assert store.recent() == []
    store.close()


def test_clusters_group_by_likeness():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 64))
    points, truth = [], []
    for label, (c, n) in enumerate(zip(centres, (5, 3, 1), strict=True)):
        for _ in range(n):
            v = c + 0.3 * rng.normal(size=64)
            points.append(v / np.linalg.norm(v))
            truth.append(label)
    order = rng.permutation(len(points))
    embeddings = np.array(points)[order]
    labels = np.array(truth)[order]
    groups = cluster_faces(embeddings, Scoring(0.5))
    assert [len(g) for g in groups] == [5, 3, 1]
    for g in groups:
        assert len(set(labels[g])) == 1
    assert cluster_faces(np.zeros((0, 64)), Scoring(0.5)) == []
    assert cluster_faces(embeddings, Scoring(1.01)) == sorted(
        [[i] for i in range(len(points))], key=lambda g: g[0]
    )


def test_live_view_encodes_once_per_frame():
    live = LiveView(max_width=320)
    assert live.jpeg() is None and live.latest() is None
    frame = np.full((480, 640, 3), 90, np.uint8)
    live.update(frame, [LiveFace((100, 100, 120, 120), "ann", 0.8)], 123.0)
    first = live.jpeg()
    assert first is live.jpeg()  # cached for the same frame
    image = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    assert image[:, :, 1].max() > 150  # the green box was drawn
    assert live.latest()[1] == 123.0 and live.status()["frames"] == 1
    assert frame.max() == 90  # the daemon's frame was not drawn on
