"""The gallery's single-writer lock and its "not <name>" examples, with the matching rule."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from edge.errors import GalleryError
from edge.gallery import STORED_CROP_SIZE, Gallery, gallery_lock
from edge.matching import Matcher
from edge.scoring import Scoring

DIM = 16


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _crops(n: int, value: int = 100) -> np.ndarray:
    return np.full((n, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), value, np.uint8)


def test_lock_waits_for_the_holder_and_times_out(tmp_path):
    path = tmp_path / "gallery.npz"
    held = threading.Event()
    release = threading.Event()

    def holder():
        with gallery_lock(path):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    with pytest.raises(GalleryError, match="another writer"), gallery_lock(path, timeout=0.2):
        pass
    release.set()
    t.join()
    with gallery_lock(path, timeout=1.0):
        pass


def test_writers_in_other_processes_never_lose_each_others_changes(tmp_path):
    """Two processes each enrol 8 people, one at a time under the lock: all 16 are kept."""
    path = tmp_path / "gallery.npz"
    Gallery.create(path, "m", 32, DIM).save()
    code = (
        "import sys, numpy as np\n"
        "from edge.gallery import STORED_CROP_SIZE as S, Gallery, gallery_lock\n"
        "for i in range(8):\n"
        "    with gallery_lock(sys.argv[1]):\n"
        "        g = Gallery.load(sys.argv[1])\n"
        "        e = np.ones((1, 16), np.float32) / 4\n"
        "        g.enroll(f'{sys.argv[2]}{i}', np.full((1, S, S, 3), 9, np.uint8), e, ['x'])\n"
        "        g.save()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), who]) for who in ("a", "b")]
    assert all(p.wait(120) == 0 for p in procs)
    assert len(Gallery.load(path).people) == 16


def test_negatives_are_saved_renamed_removed_and_rebuilt(tmp_path):
    g = Gallery.create(tmp_path / "g.npz", "m", 32, DIM)
    rng = np.random.default_rng(0)
    g.enroll("ann", _crops(2), _unit(rng.normal(size=(2, DIM))), ["a", "b"])
    with pytest.raises(GalleryError, match="no person"):
        g.add_negative("bob", _crops(1), _unit(rng.normal(size=(1, DIM))))
    g.add_negative("ann", _crops(1, 50), _unit(rng.normal(size=(1, DIM))))
    g.save()
    loaded = Gallery.load(g.path)
    assert loaded.negative_names.tolist() == ["ann"]
    np.testing.assert_array_equal(loaded.negative_embeddings, g.negative_embeddings)
    loaded.rename("ann", "anne")
    assert loaded.negative_names.tolist() == ["anne"]

    class Doubler:  # a "new model": embeddings of DIM, from crops at 32 px
        model_id, input_size, embedding_size = "m2", 32, DIM
        preprocessing = "doorface-align-1"

        def embed(self, crops):
            return _unit(np.tile(crops.mean(axis=(1, 2)), (1, DIM // 3 + 1))[:, :DIM] + 1)

    loaded.rebuild(Doubler())
    assert loaded.negative_embeddings.shape == (1, DIM) and loaded.model_id == "m2"
    loaded.remove_sample(0)
    assert loaded.negative_names.tolist() == ["anne"]  # one sample left: still enrolled
    loaded.remove_sample(0)
    assert loaded.people == [] and len(loaded.negative_names) == 0
    with pytest.raises(GalleryError, match="no sample"):
        loaded.remove_sample(0)


def test_a_gallery_written_before_negatives_loads(tmp_path):
    path = tmp_path / "old.npz"
    g = Gallery.create(path, "m", 32, DIM)
    g.enroll("ann", _crops(1), _unit(np.ones((1, DIM))), ["a"])
    np.savez(  # the arrays of a gallery from before negative examples
        path,
        meta=np.array(
            '{"schema": "doorface.gallery/1", "model_id": "m", "input_size": 32,'
            ' "embedding_size": 16}'
        ),
        names=g.names,
        embeddings=g.embeddings,
        crops=g.crops,
        sources=g.sources,
    )
    loaded = Gallery.load(path)
    assert loaded.people == ["ann"] and len(loaded.negative_names) == 0


def test_not_alice_rejects_the_look_alike_but_not_alice():
    rng = np.random.default_rng(3)
    alice = rng.normal(size=DIM)
    stranger = alice + 0.9 * rng.normal(size=DIM)  # a look-alike
    alice_photos = _unit(alice + 0.3 * rng.normal(size=(4, DIM)))
    stranger_visits = _unit(stranger + 0.3 * rng.normal(size=(3, DIM)))
    g = Gallery.create("g.npz", "m", 32, DIM)
    g.enroll("alice", _crops(3), alice_photos[:3], ["x"] * 3)
    before = Matcher(g, Scoring(0.5), margin=0.0)
    assert [m.name for m in before.match_many(stranger_visits)] == ["alice"] * 3
    g.add_negative("alice", _crops(1), stranger_visits[:1])  # "this is not Alice"
    after = before.with_gallery(g)
    later = after.match_many(stranger_visits[1:])
    assert [(m.name, m.reason) for m in later] == [(None, "negative")] * 2
    assert after.match(alice_photos[3]).name == "alice"
    assert after.negative_score(alice_photos[3], "alice") < after.match(alice_photos[3]).score
    assert after.negative_score(alice_photos[3], "nobody") == -np.inf  # no negatives


def test_lock_file_is_private(tmp_path):
    with gallery_lock(tmp_path / "g.npz"):
        pass
    assert stat.S_IMODE(os.stat(tmp_path / "g.npz.lock").st_mode) == 0o600
