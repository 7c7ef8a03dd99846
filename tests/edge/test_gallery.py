import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from edge.errors import GalleryError
from edge.gallery import Gallery

SIZE, DIM = 16, 8


def _unit(rng, n):
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _gallery(path, model_id="a" * 64, people=("alice", "bob"), per=3, seed=0):
    rng = np.random.default_rng(seed)
    g = Gallery.create(path, model_id, SIZE, DIM)
    for name in people:
        crops = rng.integers(0, 255, size=(per, SIZE, SIZE, 3), dtype=np.uint8)
        g.enroll(name, crops, _unit(rng, per), [f"{name}{i}.jpg" for i in range(per)])
    return g


def test_round_trip_and_file_mode(tmp_path):
    g = _gallery(tmp_path / "g.npz")
    g.save()
    mode = stat.S_IMODE(os.stat(tmp_path / "g.npz").st_mode)
    assert mode == 0o600
    back = Gallery.load(tmp_path / "g.npz")
    assert back.people == ["alice", "bob"]
    assert [(p.name, p.samples) for p in back.persons()] == [("alice", 3), ("bob", 3)]
    np.testing.assert_array_equal(back.crops, g.crops)
    np.testing.assert_allclose(back.embeddings, g.embeddings)
    assert back.model_id == "a" * 64
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_remove_and_rename(tmp_path):
    g = _gallery(tmp_path / "g.npz")
    assert g.remove("alice") == 3
    g.rename("bob", "robert")
    g.save()
    assert Gallery.load(tmp_path / "g.npz").people == ["robert"]
    with pytest.raises(GalleryError, match="no person named 'carol'"):
        g.remove("carol")
    with pytest.raises(GalleryError, match="no person named"):
        g.rename("carol", "x")
    g2 = _gallery(tmp_path / "h.npz")
    with pytest.raises(GalleryError, match="already enrolled"):
        g2.rename("alice", "bob")


def test_refuses_another_model(tmp_path):
    _gallery(tmp_path / "g.npz", model_id="a" * 64).save()
    with pytest.raises(
        GalleryError, match="made by model aaaaaaaaaaaa, not by this model bbbbbbbbbbbb"
    ):
        Gallery.open_or_create(tmp_path / "g.npz", "b" * 64, SIZE, DIM)


@pytest.mark.parametrize(
    "damage",
    [b"", b"garbage that is not a zip", None],
)
def test_corrupt_file_is_a_one_line_error(tmp_path, damage):
    path = tmp_path / "g.npz"
    _gallery(path).save()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage is None else damage)
    with pytest.raises(GalleryError, match=r"g\.npz: corrupt gallery") as info:
        Gallery.load(path)
    assert "\n" not in str(info.value)


def test_not_a_gallery(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.array('{"schema": "something/else"}'), names=np.array(["x"]))
    with pytest.raises(GalleryError, match="not a doorface gallery"):
        Gallery.load(path)


WRITER = """
import sys, numpy as np
from edge.gallery import Gallery
path, n = sys.argv[1], 0
rng = np.random.default_rng(0)
crops = rng.integers(0, 255, size=(400, 64, 64, 3), dtype=np.uint8)
emb = rng.normal(size=(400, 8)).astype(np.float32)
while True:
    g = Gallery.create(path, "m" * 64, 64, 8)
    g.enroll(f"gen{n}", crops, emb, ["x"] * 400)
    g.save()
    n += 1
    print(n, flush=True)
"""


def test_kill_mid_write_never_corrupts(tmp_path):
    """SIGKILL a process that rewrites a 5 MB gallery in a loop: it always loads."""
    path = tmp_path / "g.npz"
    for attempt in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one complete save
        time.sleep(0.05 + 0.07 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        g = Gallery.load(path)
        assert len(g) == 400 and g.people[0].startswith("gen")
