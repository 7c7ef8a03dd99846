"""The face cache: built once, reused, refreshed when an image changes; skips are counted."""

from __future__ import annotations

import os
from dataclasses import replace

import cv2
import numpy as np

from edge.detectors import TRAINING_DETECTOR, DetectorSettings, create_detector
from edge.detectors.base import Detector, Face
from edge.detectors.yunet import SHIPPED_MODEL
from edge.preprocess import PREPROCESS_VERSION, face_crop_from_file
from trainer.cache import detector_tag, load_root
from trainer.data import load_faces


class CountingDetector(Detector):
    """Finds one face in every image whose top-left pixel is not black; counts its calls."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _detect(self, image_bgr, min_side):
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
        preprocessing=PREPROCESS_VERSION,
    )
    assert faces.names == ["lfw/Cid_C"]
    assert faces.excluded_people == 2 and faces.excluded_images == 4
    assert not any("Ann_A" in p or "Bob_B" in p for p in faces.paths)


def test_cached_crops_are_the_edges_crops(tmp_path, astronaut_bgr):
    """The same photo gives byte-equal crops through the trainer's cache (its default detector:
    whole photo) and the edge's ``face_crop_from_file`` (its default: 320 px wide), for a photo
    of LFW's 250x250 size; also once read back from the cache file."""
    root = tmp_path / "people"
    (root / "eileen").mkdir(parents=True)
    photo = root / "eileen" / "1.png"
    cv2.imwrite(str(photo), cv2.resize(astronaut_bgr, (250, 250), interpolation=cv2.INTER_AREA))
    training = create_detector(TRAINING_DETECTOR)
    built = load_root(root, training, 64, tmp_path / "cache", progress=False)
    read_back = load_root(root, training, 64, tmp_path / "cache", progress=False)
    edge = face_crop_from_file(photo, create_detector(), 64)
    assert built.crops.shape == (1, 64, 64, 3)
    assert built.crops[0].tobytes() == edge.crop.tobytes()
    assert read_back.crops[0].tobytes() == edge.crop.tobytes()
    np.testing.assert_array_equal(built.landmarks[0], edge.face.landmarks)


def test_cache_is_keyed_by_every_detector_setting_and_the_model_bytes():
    default = create_detector(TRAINING_DETECTOR)
    same_file = create_detector(replace(TRAINING_DETECTOR, model=str(SHIPPED_MODEL)))
    assert detector_tag(default) == detector_tag(same_file)
    assert detector_tag(default) != detector_tag(create_detector(DetectorSettings()))
    smaller = create_detector(replace(TRAINING_DETECTOR, min_face=30))
    assert detector_tag(default) != detector_tag(smaller)
    assert detector_tag(default).startswith("yunet-")
