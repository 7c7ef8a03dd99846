"""The face cache: built once, reused, refreshed when an image changes; skips are counted."""

from __future__ import annotations

import os

import cv2
import numpy as np

from edge.detectors.base import Detector, Face
from trainer.cache import load_root
from trainer.data import load_faces


class CountingDetector(Detector):
    """Finds one face in every image whose top-left pixel is not black; counts its calls."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _detect(self, image_bgr):
        self.calls += 1
        if image_bgr[0, 0].sum() == 0:
            return []
        marks = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float32)
        return [Face((10.0, 10.0, 80.0, 80.0), 0.99, marks)]


def _write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((100, 100, 3), value, np.uint8))


def test_cache_reuses_and_refreshes(tmp_path):
    root = tmp_path / "people"
    _write(root / "ann" / "1.png", 100)
    _write(root / "ann" / "2.png", 120)
    _write(root / "bob" / "1.png", 0)  # no face
    (root / "bob" / "2.jpg").write_bytes(b"not a jpeg")  # unreadable
    det = CountingDetector()
    faces = load_root(root, det, 32, tmp_path / "cache", progress=False)
    assert faces.crops.shape == (2, 32, 32, 3) and faces.identities == ["ann", "ann"]
    assert faces.skip_counts == {"no face": 1, "unreadable": 1}
    assert det.calls == 3
    again = load_root(root, det, 32, tmp_path / "cache", progress=False)
    assert det.calls == 3  # nothing re-detected
    np.testing.assert_array_equal(again.crops, faces.crops)
    _write(root / "ann" / "2.png", 140)
    os.utime(root / "ann" / "2.png", ns=(1, 1))
    load_root(root, det, 32, tmp_path / "cache", progress=False)
    assert det.calls == 4  # only the changed image
    load_root(root, det, 48, tmp_path / "cache", progress=False)
    assert det.calls == 7  # another crop size is another cache


def test_load_faces_excludes_pair_file_people(tmp_path):
    root = tmp_path / "lfw"
    for person in ("Ann_A", "Bob_B", "Cid_C"):
        for i in (1, 2):
            _write(root / person / f"{person}_{i:04d}.png", 90 + i)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nAnn_A 1 2\nAnn_A 1 Bob_B 2\n")
    faces = load_faces(
        [root],
        32,
        detector=CountingDetector(),
        cache_dir=tmp_path / "c",
        exclude_pairs=[pairs],
        progress=False,
    )
    assert faces.names == ["lfw/Cid_C"]
    assert faces.excluded_people == 2 and faces.excluded_images == 4
    assert not any("Ann_A" in p or "Bob_B" in p for p in faces.paths)
