import numpy as np
import pytest

from edge.align import (
    DLIB_CHIP,
    PREPROCESS_VERSION,
    align_face,
    preprocessing_in,
    realign_crops,
    similarity_transform,
    template,
)
from edge.preprocess import face_crop


def test_similarity_transform_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_similarity_transform_rejects_degenerate_points():
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), template(112))


def test_template_scales_with_crop_size():
    np.testing.assert_allclose(template(56), template(112) / 2)
    assert PREPROCESS_VERSION


def test_align_moves_landmarks_onto_template():
    """Warp a synthetic image with dots at the landmarks: the dots land on the template."""
    size = 64
    image = np.zeros((300, 400, 3), np.uint8)
    rng = np.random.default_rng(1)
    angle, scale = 0.2, 2.5
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = template(size) @ rot.T + np.array([150.0, 80.0])
    for i, (x, y) in enumerate(landmarks):
        image[round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3] = 50 * (i + 1)
    crop = align_face(image, landmarks + rng.normal(0, 0.1, size=(5, 2)), size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    for i, (x, y) in enumerate(template(size)):
        patch = crop[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2, 0]
        assert abs(int(patch.max()) - 50 * (i + 1)) <= 12


@pytest.mark.parametrize("preprocessing", [PREPROCESS_VERSION, DLIB_CHIP])
def test_each_preprocessing_puts_the_landmarks_on_its_own_template(preprocessing):
    """Dots at the landmarks of a frame land where the model's template wants them: dlib's
    chip frames the face tighter and lower than doorface's crop (eyes further apart)."""
    size = 150
    image = np.zeros((400, 400, 3), np.uint8)
    landmarks = template(112, preprocessing) * 2.0 + np.array([90.0, 60.0])
    for i, (x, y) in enumerate(landmarks):
        image[round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3] = 50 * (i + 1)
    crop = align_face(image, landmarks, size, preprocessing)
    for i, (x, y) in enumerate(template(size, preprocessing)):
        patch = crop[round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3, 0]
        assert abs(int(patch.max()) - 50 * (i + 1)) <= 20
    eyes = template(size, preprocessing)[:2]
    assert (np.diff(eyes[:, 0]) > np.diff(template(size)[:2, 0])) == (preprocessing == DLIB_CHIP)


def test_stored_crops_are_recut_for_another_template():
    """A doorface-aligned crop re-cut for dlib's chip: the same as cutting the chip from the
    frame, except below the stored crop, which comes out black."""
    rng = np.random.default_rng(3)
    image = rng.integers(1, 255, (400, 400, 3), dtype=np.uint8)
    image = np.asarray(__import__("cv2").GaussianBlur(image, (0, 0), 4), np.uint8)
    landmarks = template(112) * 1.5 + np.array([100.0, 80.0])
    stored = align_face(image, landmarks, 112)
    direct = align_face(image, landmarks, 150, DLIB_CHIP)
    recut = realign_crops(stored[None], 150, DLIB_CHIP)[0]
    inside = recut.max(axis=2) > 0
    assert 0.85 < inside.mean() < 1.0  # dlib's chip reaches below the stored crop's chin
    diff = np.abs(recut.astype(int) - direct.astype(int))[inside]
    assert np.median(diff) <= 3
    assert realign_crops(np.zeros((0, 112, 112, 3), np.uint8), 150, DLIB_CHIP).shape == (
        0,
        150,
        150,
        3,
    )


def test_a_run_record_names_its_preprocessing_or_gets_the_default():
    from edge.errors import ModelError

    assert preprocessing_in({}, "t.json") == PREPROCESS_VERSION
    assert preprocessing_in({}, "t.json", DLIB_CHIP) == DLIB_CHIP
    assert preprocessing_in({"preprocessing": DLIB_CHIP}, "t.json") == DLIB_CHIP
    with pytest.raises(ModelError, match=r"^t.json: preprocessing: 'arcface-9' is none of"):
        preprocessing_in({"preprocessing": "arcface-9"}, "t.json")


def test_align_returns_rgb():
    image = np.zeros((200, 200, 3), np.uint8)
    image[..., 0] = 255  # pure blue in BGR
    crop = align_face(image, template(112) + 40, 112)
    assert crop[56, 56].tolist() == [0, 0, 255]


@pytest.mark.parametrize("backend", ["yunet", "haar"])
def test_astronaut_landmarks_land_near_template(backend, astronaut_bgr):
    from edge.detectors import DetectorSettings, create_detector
    from edge.detectors.base import Face

    detector = create_detector(DetectorSettings(backend=backend))
    faces = detector.detect(astronaut_bgr)
    assert len(faces) == 1
    face: Face = faces[0]
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 180  # Eileen Collins' face
    left_eye, right_eye = face.landmarks[0], face.landmarks[1]
    assert left_eye[0] < right_eye[0]  # image-left eye first, as the template
    size = 112
    aligned = face_crop(astronaut_bgr, detector, size)
    m = similarity_transform(face.landmarks, template(size))
    mapped = face.landmarks @ m[:, :2].T + m[:, 2]
    # residual of the 5 points after alignment, relative to the eye distance on the template
    iod = np.linalg.norm(template(size)[1] - template(size)[0])
    assert np.linalg.norm(mapped - template(size), axis=1).mean() / iod < 0.12
    # deterministic: the same input gives the same bytes
    assert np.array_equal(aligned.crop, face_crop(astronaut_bgr, detector, size).crop)
