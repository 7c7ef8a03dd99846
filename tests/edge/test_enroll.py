"""Enrolment keeps 192 px crops in the gallery's framing for other models, embeds the model's
own directly aligned crop, and a gallery path that cannot be written is one line before any
photo is read."""

import cv2
import numpy as np
import pytest

from edge.align import GALLERY_FRAMING, align_face
from edge.cli import main
from edge.detectors import DetectorSettings, create_detector
from edge.embedder import RECOGNITION_FLIP, Embedder
from edge.enroll import crops_from_images, crops_from_source
from edge.gallery import STORED_CROP_SIZE, Gallery
from edge.preprocess import detect_faces

SIDE = STORED_CROP_SIZE


@pytest.fixture(scope="module")
def haar():
    return create_detector(DetectorSettings(backend="haar"))


def _shifted(image: np.ndarray, dx: int) -> np.ndarray:
    return np.ascontiguousarray(np.roll(image, dx, axis=1))


def test_photo_enrolment_keeps_stored_crops_from_the_same_landmarks(tmp_path, astronaut_bgr, haar):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut_bgr)
    result = crops_from_images([tmp_path], haar, 32)
    landmarks = detect_faces(astronaut_bgr, haar)[0].landmarks
    assert [c.shape for c in result.crops] == [(32, 32, 3)]
    np.testing.assert_array_equal(result.crops[0], align_face(astronaut_bgr, landmarks, 32))
    np.testing.assert_array_equal(
        result.stored_crops[0], align_face(astronaut_bgr, landmarks, SIDE, GALLERY_FRAMING)
    )


def test_live_enrolment_keeps_stored_crops_of_each_frame(tmp_path, astronaut_bgr, haar, tiny_model):
    frames = [_shifted(astronaut_bgr, dx) for dx in (0, 40, 80)]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frame)
    embedder = Embedder(tiny_model)
    result = crops_from_source(str(tmp_path), haar, embedder, 3, max_similarity=1.1)
    assert len(result.stored_crops) == len(result.crops) == 3
    for frame, crop, stored in zip(frames, result.crops, result.stored_crops, strict=True):
        landmarks = detect_faces(frame, haar)[0].landmarks
        np.testing.assert_array_equal(crop, align_face(frame, landmarks, embedder.input_size))
        np.testing.assert_array_equal(stored, align_face(frame, landmarks, SIDE, GALLERY_FRAMING))


def test_cli_enrol_stores_stored_crops_and_embeds_the_direct_crop(
    capsys, tmp_path, astronaut_bgr, haar, tiny_model
):
    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    g = tmp_path / "g.npz"
    args = ["enroll", "--gallery", g, "--name", "E", "--model", tiny_model, "--detector", "haar"]
    assert main([str(a) for a in [*args, photo]]) == 0, capsys.readouterr().err
    gallery = Gallery.load(g)
    assert gallery.crops.shape == (1, SIDE, SIDE, 3)
    image = cv2.imread(str(photo))
    landmarks = detect_faces(image, haar)[0].landmarks
    np.testing.assert_array_equal(
        gallery.crops[0], align_face(image, landmarks, SIDE, GALLERY_FRAMING)
    )
    embedder = Embedder(tiny_model, flip=RECOGNITION_FLIP)  # as `edge enroll` embeds
    direct = embedder.embed(align_face(image, landmarks, embedder.input_size))
    np.testing.assert_allclose(gallery.embeddings, direct, atol=1e-6)


@pytest.mark.parametrize("under", ["file", "file/deeper"])
def test_cli_enrol_into_a_path_under_a_file_is_one_line(capsys, tmp_path, tiny_model, under):
    (tmp_path / "file").write_text("not a folder")
    g = tmp_path / under / "g.npz"
    code = main(["enroll", "--gallery", str(g), "--name", "E", "--model", str(tiny_model), "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {g}: cannot write the gallery ({tmp_path / 'file'} is not a folder)\n"
