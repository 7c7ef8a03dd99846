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

from edge.align import (
    DLIB_CHIP,
    GALLERY_FRAMING,
    PREPROCESS_VERSION,
    TEMPLATE_112,
    align_face,
    realign_crops,
)
from edge.errors import GalleryError
from edge.gallery import (
    STORED_CROP_SIZE,
    Gallery,
    gallery_lock,
    load_gallery_for_model,
    recut_crops,
    stored_crop,
)

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


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "1 to 64"),
        ("x" * 65, "1 to 64"),
        ("al\nice", "control characters"),  # would break `edge gallery list`'s lines
        ("a/b", "'/'"),
        ("..", "'.' or '..'"),
    ],
)
def test_one_name_rule_for_enrolling_and_renaming(tmp_path, name, why):
    g = _gallery(tmp_path / "g.npz")
    rng = np.random.default_rng(1)
    crops = np.zeros((1, SIDE, SIDE, 3), np.uint8)
    with pytest.raises(GalleryError, match=re.escape(why)):
        g.enroll(name, crops, _unit(rng, 1), ["x.jpg"])
    with pytest.raises(GalleryError, match=re.escape(why)):
        g.rename("alice", name)
    assert g.people == ["alice", "bob"]
    g.enroll(" Zoe\u0301 ", crops, _unit(rng, 1), ["z.jpg"])  # stripped, NFC
    assert "Zo\u00e9" in g.people


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
from edge.gallery import STORED_CROP_SIZE as SIDE, Gallery
path, n = sys.argv[1], 0
rng = np.random.default_rng(0)
crops = rng.integers(0, 255, size=(50, SIDE, SIDE, 3), dtype=np.uint8)
emb = rng.normal(size=(50, 8)).astype(np.float32)
emb /= np.linalg.norm(emb, axis=1, keepdims=True)
while True:
    g = Gallery.create(path, "m" * 64, 64, 8)
    g.enroll(f"gen{n}", crops, emb, ["x"] * 50)
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
        assert len(g) == 50 and g.people[0].startswith("gen")


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
    with pytest.raises(
        GalleryError, match=rf"crops of shape \(16, 16, 3\): a gallery keeps {SIDE}px"
    ):
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
    # enrolling someone new re-cuts the old crops into the stored framing and size
    new = np.full((2, SIDE, SIDE, 3), 200, np.uint8)
    g.enroll("new", new, embedder.embed(np.zeros((2, 24, 24, 3), np.uint8)), ["n0", "n1"])
    g.save()
    back = Gallery.load(path)
    assert back.crops.shape == (6, SIDE, SIDE, 3) and back.people == ["new", "old"]
    assert back.crop_framing == GALLERY_FRAMING
    np.testing.assert_array_equal(back.crops[4:], new)
    old_recut = recut_crops(old_crops, SIDE, GALLERY_FRAMING, PREPROCESS_VERSION)
    np.testing.assert_array_equal(back.crops[:4], old_recut)


def test_rebuild_for_a_model_with_another_template_recuts_the_stored_crops(tmp_path):
    g = Gallery.create(tmp_path / "g.npz", "a" * 64, SIZE, DIM)
    rng = np.random.default_rng(2)
    stored = rng.integers(1, 255, (3, SIDE, SIDE, 3), dtype=np.uint8)
    g.enroll("p", stored, FakeEmbedder("a" * 64).embed(stored), ["a", "b", "c"])
    chip = FakeEmbedder("c" * 64, input_size=30, preprocessing=DLIB_CHIP)
    g.rebuild(chip)
    np.testing.assert_array_equal(
        chip.crops[-1], realign_crops(stored, 30, DLIB_CHIP, GALLERY_FRAMING)
    )
    assert g.model_id == "c" * 64 and g.input_size == 30


def test_a_112px_doorface_gallery_of_before_is_recut_from_its_own_framing(tmp_path):
    """Galleries of 2026-12-07 and before: 112 px crops in doorface's framing, no
    ``crop_framing`` in their metadata. They load as such and a rebuild re-cuts from there."""
    path = tmp_path / "old.npz"
    rng = np.random.default_rng(3)
    crops = rng.integers(1, 255, size=(2, 112, 112, 3), dtype=np.uint8)
    meta = {"schema": "doorface.gallery/1", "model_id": "a" * 64, "input_size": SIZE}
    meta |= {"embedding_size": DIM, "created": "2026-12-01T00:00:00+00:00"}
    np.savez_compressed(
        path,
        meta=np.array(json.dumps(meta)),
        names=np.array(["old", "old"]),
        embeddings=_unit(rng, 2),
        crops=crops,
        sources=np.array(["a.jpg", "b.jpg"]),
    )
    g = Gallery.load(path)
    assert g.crop_framing == PREPROCESS_VERSION and g.crop_size == 112
    chip = FakeEmbedder("c" * 64, input_size=30, preprocessing=DLIB_CHIP)
    g.rebuild(chip)
    np.testing.assert_array_equal(chip.crops[-1], realign_crops(crops, 30, DLIB_CHIP))


def test_a_gallery_of_unknown_framing_is_refused(tmp_path):
    path = tmp_path / "g.npz"
    _gallery(path).save()
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"])) | {"crop_framing": "someone-elses-1"}
    np.savez_compressed(path, **(arrays | {"meta": np.array(json.dumps(meta))}))
    with pytest.raises(GalleryError, match="framing this edge does not know: 'someone-elses-1'"):
        Gallery.load(path)


def test_stored_crops_give_each_model_its_own_crop_from_real_pixels():
    """What a rebuild gives a model is (almost) the crop a direct enrolment gives it: dlib's
    chip and doorface's crop both lie inside the stored framing at their own scale or finer, so
    no band of the re-cut crop is black. The 112 px crops kept until 2026-12-07 lacked the
    bottom of dlib's chip (black) and were enlarged 1.5x into it."""
    from skimage import data

    image = np.ascontiguousarray(data.astronaut()[..., ::-1])  # BGR, 512 x 512
    landmarks = TEMPLATE_112 * 1.6 + np.array([150.0, 20.0])  # a face of ~180 px
    stored = stored_crop(image, landmarks)[None]
    # mean absolute pixel error against the direct crop: dlib's chip is cut at its own scale
    # (the old crops: 7.9, their bottom rows black); doorface's is shrunk 1.5x a second time
    # (two bilinear resamplings of a textured photo differ by a few levels)
    for preprocessing, size, bound in ((DLIB_CHIP, 150, 2.0), (PREPROCESS_VERSION, 112, 7.0)):
        direct = align_face(image, landmarks, size, preprocessing).astype(np.int16)
        rebuilt = recut_crops(stored, size, preprocessing, GALLERY_FRAMING)[0].astype(np.int16)
        assert rebuilt.max(axis=(1, 2)).min() > 0  # no black row
        assert np.abs(rebuilt - direct).mean() < bound, preprocessing
    old = realign_crops(align_face(image, landmarks, 112)[None], 150, DLIB_CHIP)[0]
    assert old[-8:].max() == 0  # the old crops' black band under the chin


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
    recut = recut_crops(old.crops, 24, PREPROCESS_VERSION, GALLERY_FRAMING)
    expected = FakeEmbedder("b" * 64, input_size=24).embed(recut)
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


# -- hostile files (found by fuzzing): refused in one line, never matched ---------------------
def _rewrite(path, **arrays):
    """The gallery file at ``path`` with some arrays replaced, as a hand-made file would be."""
    with np.load(path) as data:
        content = {key: data[key] for key in data.files}
    np.savez(path, **(content | arrays))


def _with_negative(path):
    g = _gallery(path)
    rng = np.random.default_rng(5)
    g.add_negative("alice", np.ones((1, SIDE, SIDE, 3), np.uint8), _unit(rng, 1))
    g.save()


def _nan_row(rows):
    bad = rows.copy()
    bad[0, 0] = np.nan
    return bad


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda e: _nan_row(e), "embeddings hold NaN or infinite values"),
        (lambda e: np.full_like(e, np.inf), "embeddings hold NaN or infinite values"),
        (lambda e: np.zeros_like(e), "embeddings are not unit vectors"),
        (lambda e: 1000 * e, "embeddings are not unit vectors"),
        (lambda e: e.astype(np.float64), None),  # loads as float32: fine
        (lambda e: e.astype(np.float16), None),
        (lambda e: (e * 100).astype(np.int64), r"embeddings must be floats, not int64"),
    ],
)
@pytest.mark.parametrize("key", ["embeddings", "negative_embeddings"])
def test_embeddings_must_be_finite_unit_vectors(tmp_path, damage, why, key):
    path = tmp_path / "g.npz"
    _with_negative(path)
    with np.load(path) as data:
        _rewrite(path, **{key: damage(data[key])})
    if why is None:
        assert Gallery.load(path).people == ["alice", "bob"]
        return
    with pytest.raises(GalleryError) as info:
        Gallery.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert re.search(why, message) and key in message


@pytest.mark.parametrize(
    "key, value, want",
    [
        ("names", np.array([["alice"]] * 3 + [["bob"]] * 3), "names must be 1-D text"),
        ("names", np.array([b"alice"] * 3 + [b"bob"] * 3), r"names must be 1-D text, not \|S5"),
        ("names", np.arange(6), "names must be 1-D text, not int64"),
        ("sources", np.array([b"a.jpg"] * 6), "sources must be 1-D text"),
        ("negative_names", np.array([["alice"]]), "negative_names must be 1-D text"),
        ("negative_names", np.array([b"alice"]), "negative_names must be 1-D text"),
        ("crops", np.zeros((6, SIDE, SIDE, 3), np.float32), "crops must be uint8 pixels"),
    ],
)
def test_names_must_be_1d_text_and_crops_uint8(tmp_path, key, value, want):
    path = tmp_path / "g.npz"
    _with_negative(path)
    _rewrite(path, **{key: value})
    with pytest.raises(GalleryError, match=want) as info:
        Gallery.load(path)
    assert str(info.value).startswith(f"{path}: corrupt gallery (") and "\n" not in str(info.value)


@pytest.mark.parametrize("size", ["input_size", "embedding_size"])
def test_sizes_in_the_metadata_must_be_positive(tmp_path, size):
    path = tmp_path / "g.npz"
    Gallery.create(path, "m", SIZE, DIM).save()
    with np.load(path) as data:
        meta = json.loads(str(data["meta"])) | {size: 0}
    _rewrite(path, meta=np.array(json.dumps(meta)))
    with pytest.raises(GalleryError, match=r"g\.npz: corrupt gallery metadata"):
        Gallery.load(path)


def test_enrolling_non_finite_or_non_unit_embeddings_is_refused_before_saving(tmp_path):
    path = tmp_path / "g.npz"
    g = _gallery(path)
    g.save()
    crops = np.ones((1, SIDE, SIDE, 3), np.uint8)
    for bad, why in ((np.full((1, DIM), np.nan), "NaN"), (np.zeros((1, DIM)), "not unit")):
        with pytest.raises(GalleryError, match=f"g\\.npz: embeddings .*{why}"):
            g.enroll("carol", crops, bad, ["c.jpg"])
        with pytest.raises(GalleryError, match=f"g\\.npz: negative embeddings .*{why}"):
            g.add_negative("alice", crops, bad)
    assert g.people == ["alice", "bob"] and len(g.negative_names) == 0
    assert Gallery.load(path).people == ["alice", "bob"]


def test_a_symlinked_gallery_is_saved_and_locked_at_its_target(tmp_path):
    real, link = tmp_path / "real.npz", tmp_path / "link.npz"
    _gallery(real).save()
    link.symlink_to(real.name)
    with gallery_lock(link):
        g = Gallery.load(link)
        g.rename("alice", "zed")
        g.save()
    assert link.is_symlink() and os.readlink(link) == real.name
    assert Gallery.load(real).people == ["bob", "zed"]
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600
    assert not list(tmp_path.glob(".*tmp")) and not (tmp_path / "link.npz.lock").exists()
    held = pytest.raises(GalleryError, match=r"real\.npz\.lock: another writer")
    with gallery_lock(real), held, gallery_lock(link, timeout=0.1):  # one lock for both names
        pass


def test_a_symlink_to_a_gallery_not_yet_written_creates_its_target(tmp_path):
    (tmp_path / "state").mkdir()
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "state" / "g.npz")
    g = Gallery.open_or_create(link, "a" * 64, SIZE, DIM)
    g.save()
    assert link.is_symlink() and Gallery.load(tmp_path / "state" / "g.npz").model_id == "a" * 64


def test_a_symlink_loop_is_a_one_line_error(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(GalleryError, match=r"a\.npz: cannot write the gallery \(a symlink loop\)"):
        Gallery.open_or_create(a, "m", SIZE, DIM)
    with pytest.raises(GalleryError, match=r"a\.npz: cannot read \(Too many levels of symbolic"):
        Gallery.load(a)


def test_a_gallery_path_that_is_not_a_file_is_a_one_line_error(tmp_path):
    os.mkfifo(tmp_path / "pipe.npz")  # np.load would wait for a writer forever
    for path, problem in [(tmp_path / "pipe.npz", "a named pipe"), (tmp_path, "a folder")]:
        with pytest.raises(GalleryError) as e:
            Gallery.load(path)
        assert str(e.value) == f"{path}: not a regular file ({problem})"
