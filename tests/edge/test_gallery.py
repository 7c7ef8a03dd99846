import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from edge.align import DLIB_CHIP, PREPROCESS_VERSION, realign_crops
from edge.errors import GalleryError
from edge.gallery import STORED_CROP_SIZE, Gallery, load_gallery_for_model, resized_crops

SIZE, DIM = 16, 8  # the (fake) model's input size and embedding size
SIDE = STORED_CROP_SIZE


def _unit(rng, n):
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _gallery(path, model_id="a" * 64, people=("alice", "bob"), per=3, seed=0):
    rng = np.random.default_rng(seed)
    g = Gallery.create(path, model_id, SIZE, DIM)
    for name in people:
        crops = rng.integers(0, 255, size=(per, SIDE, SIDE, 3), dtype=np.uint8)
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
crops = rng.integers(0, 255, size=(150, 112, 112, 3), dtype=np.uint8)
emb = rng.normal(size=(150, 8)).astype(np.float32)
while True:
    g = Gallery.create(path, "m" * 64, 64, 8)
    g.enroll(f"gen{n}", crops, emb, ["x"] * 150)
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
        assert len(g) == 150 and g.people[0].startswith("gen")


# -- stored crops, old galleries, saving errors ---------------------------------------------
class FakeEmbedder:
    """A deterministic 'model': each crop's mean colour in DIM horizontal bands, normalised."""

    def __init__(
        self, model_id: str, input_size: int = SIZE, preprocessing: str = PREPROCESS_VERSION
    ) -> None:
        self.model_id, self.input_size, self.embedding_size = model_id, input_size, DIM
        self.preprocessing = preprocessing
        self.seen: list[tuple[int, ...]] = []
        self.crops: list[np.ndarray] = []

    def embed(self, crops: np.ndarray) -> np.ndarray:
        self.seen.append(crops.shape)
        self.crops.append(crops)
        bands = np.array_split(crops.astype(np.float32), DIM, axis=1)
        v = np.stack([b.mean(axis=(1, 2, 3)) for b in bands], axis=1) + 1.0
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _write_old_gallery(path, model_id="a" * 64, n=4):
    """A gallery as written before 112 px crops: crops at the model's input size (16)."""
    rng = np.random.default_rng(1)
    meta = {"schema": "doorface.gallery/1", "model_id": model_id, "input_size": SIZE}
    meta |= {"embedding_size": DIM, "created": "2025-01-01T00:00:00+00:00"}
    crops = rng.integers(1, 255, size=(n, SIZE, SIZE, 3), dtype=np.uint8)
    np.savez_compressed(
        path,
        meta=np.array(json.dumps(meta)),
        names=np.array(["old"] * n),
        embeddings=FakeEmbedder(model_id).embed(crops),
        crops=crops,
        sources=np.array([f"old{i}.jpg" for i in range(n)]),
    )
    return crops


def test_crops_other_than_stored_size_are_refused():
    g = Gallery.create("mem.npz", "m", SIZE, DIM)
    crops = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    with pytest.raises(GalleryError, match=r"crops of shape \(16, 16, 3\): a gallery keeps 112px"):
        g.enroll("x", crops, np.zeros((2, DIM), np.float32), ["a", "b"])


def test_old_gallery_with_model_size_crops_loads_rebuilds_and_upgrades(tmp_path):
    path = tmp_path / "old.npz"
    old_crops = _write_old_gallery(path)
    g = Gallery.load(path)
    assert g.crop_size == SIZE and g.people == ["old"]
    embedder = FakeEmbedder("b" * 64, input_size=24)
    g.rebuild(embedder)
    assert embedder.seen == [(4, 24, 24, 3)] and g.model_id == "b" * 64
    np.testing.assert_array_equal(g.crops, old_crops)  # a rebuild never touches the crops
    # enrolling someone new brings the whole gallery to 112 px crops
    new = np.full((2, SIDE, SIDE, 3), 200, np.uint8)
    g.enroll("new", new, embedder.embed(np.zeros((2, 24, 24, 3), np.uint8)), ["n0", "n1"])
    g.save()
    back = Gallery.load(path)
    assert back.crops.shape == (6, SIDE, SIDE, 3) and back.people == ["new", "old"]
    np.testing.assert_array_equal(back.crops[4:], new)


def test_rebuild_for_a_model_with_another_template_recuts_the_stored_crops(tmp_path):
    g = Gallery.create(tmp_path / "g.npz", "a" * 64, SIZE, DIM)
    rng = np.random.default_rng(2)
    stored = rng.integers(1, 255, (3, SIDE, SIDE, 3), dtype=np.uint8)
    g.enroll("p", stored, FakeEmbedder("a" * 64).embed(stored), ["a", "b", "c"])
    chip = FakeEmbedder("c" * 64, input_size=30, preprocessing=DLIB_CHIP)
    g.rebuild(chip)
    np.testing.assert_array_equal(chip.crops[-1], realign_crops(stored, 30, DLIB_CHIP))
    assert g.model_id == "c" * 64 and g.input_size == 30


def _read_only_disk(*args, **kwargs):
    raise OSError(30, "Read-only file system")


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("file/g.npz", "file is not a folder"),
        ("file/deeper/g.npz", "file is not a folder"),
        ("read-only/g.npz", "Read-only file system"),  # root ignores folder modes: fake the disk
    ],
)
def test_a_gallery_that_cannot_be_written_is_a_one_line_error(tmp_path, where, why, monkeypatch):
    (tmp_path / "file").write_text("x")
    path = tmp_path / where
    if where.startswith("read-only"):
        monkeypatch.setattr("edge.gallery.write_bytes_atomic", _read_only_disk)
    with pytest.raises(GalleryError) as info:
        _gallery(path).save()
    message = str(info.value)
    assert message.startswith(f"{path}: cannot write the gallery (") and "\n" not in message
    assert why in message and not path.exists()
    if not where.startswith("read-only"):  # `edge enroll` finds out before any photo is read
        with pytest.raises(GalleryError, match="is not a folder"):
            Gallery.open_or_create(path, "a" * 64, SIZE, DIM)


def test_enrolling_into_a_folder_without_write_permission_fails_early(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # as root, modes are moot
    with pytest.raises(GalleryError) as info:
        Gallery.open_or_create(tmp_path / "g.npz", "a" * 64, SIZE, DIM)
    assert (
        str(info.value)
        == f"{tmp_path / 'g.npz'}: cannot write the gallery (no permission in {tmp_path})"
    )


# -- re-embedding a gallery made by another model ------------------------------------------
def _saved(path, model_id="a" * 64):
    g = _gallery(path, model_id=model_id)
    embedder = FakeEmbedder(model_id)
    g.rebuild(embedder)  # embeddings the old model really made of these crops
    g.save()
    return g


def test_a_gallery_of_another_model_is_re_embedded_and_saved(tmp_path, caplog):
    path = tmp_path / "g.npz"
    old = _saved(path)
    new = FakeEmbedder("b" * 64, input_size=24)
    with caplog.at_level(logging.INFO, logger="edge.gallery"):
        g = load_gallery_for_model(path, new)
    assert g.model_id == "b" * 64 and new.seen == [(6, 24, 24, 3)]
    expected = FakeEmbedder("b" * 64, input_size=24).embed(resized_crops(old.crops, 24))
    np.testing.assert_allclose(g.embeddings, expected)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and re.fullmatch(
        r"gallery: re-embedded 6 crops of 2 people from model a{12} to b{12} in \d+\.\d s",
        lines[0],
    )
    back = Gallery.load(path)  # saved in place, 0600, crops unchanged
    assert back.model_id == "b" * 64 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    np.testing.assert_array_equal(back.crops, old.crops)
    np.testing.assert_allclose(back.embeddings, g.embeddings)
    assert not list(tmp_path.glob(".*tmp"))
    caplog.clear()
    assert load_gallery_for_model(path, new).model_id == "b" * 64 and not caplog.records


def test_a_re_embedded_gallery_that_cannot_be_saved_is_used_from_memory(
    tmp_path, caplog, monkeypatch
):
    path = tmp_path / "g.npz"
    _saved(path)
    before = path.read_bytes()
    monkeypatch.setattr("edge.gallery.write_bytes_atomic", _read_only_disk)
    with caplog.at_level(logging.INFO, logger="edge.gallery"):
        g = load_gallery_for_model(path, FakeEmbedder("b" * 64))
    assert g.model_id == "b" * 64 and path.read_bytes() == before
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "from memory only" in warning.getMessage() and "Read-only" in warning.getMessage()


def test_a_gallery_changed_while_re_embedding_is_not_overwritten(tmp_path):
    path = tmp_path / "g.npz"
    _saved(path)

    class SlowEmbedder(FakeEmbedder):
        def embed(self, crops):  # meanwhile, someone enrols with the old model
            g = Gallery.load(path)
            g.rename("bob", "robert")
            g.save()
            return super().embed(crops)

    g = load_gallery_for_model(path, SlowEmbedder("b" * 64))
    assert g.model_id == "b" * 64
    back = Gallery.load(path)
    assert back.model_id == "a" * 64 and back.people == ["alice", "robert"]


def test_another_models_gallery_without_crops_stays_an_error(tmp_path):
    path = tmp_path / "g.npz"
    _saved(path)
    g = Gallery.load(path)
    g.crops[2] = 0  # a sample whose crop was never kept (as in the benchmarks' galleries)
    g.save()
    with pytest.raises(GalleryError) as info:
        load_gallery_for_model(path, FakeEmbedder("b" * 64))
    assert str(info.value) == (
        f"{path}: cannot re-embed for model bbbbbbbbbbbb: 1 of its 6 samples have no stored "
        "face crop (enrol those people again)"
    )
    Gallery.create(path, "a" * 64, SIZE, DIM).save()  # nobody enrolled: nothing to re-embed
    with pytest.raises(GalleryError, match="made by model aaaaaaaaaaaa, not by this model bbbb"):
        load_gallery_for_model(path, FakeEmbedder("b" * 64))
    assert Gallery.load(path).model_id == "a" * 64
