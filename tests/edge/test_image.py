import cv2
import numpy as np
import pytest

from edge.errors import ImageError
from edge.image import list_images, load_image


def _write(path, image):
    assert cv2.imwrite(str(path), image)
    return path


def test_grey_and_four_channel_images_become_bgr(tmp_path):
    grey = _write(tmp_path / "g.png", np.full((20, 30), 128, np.uint8))
    bgra = _write(tmp_path / "a.png", np.full((20, 30, 4), 200, np.uint8))
    deep = _write(tmp_path / "d.png", np.full((20, 30, 3), 65535, np.uint16))
    for path in (grey, bgra, deep):
        image = load_image(path)
        assert image.shape == (20, 30, 3) and image.dtype == np.uint8


def test_truncated_jpeg_is_rejected_with_its_name(tmp_path, astronaut_bgr):
    _ok, data = cv2.imencode(".jpg", astronaut_bgr)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated JPEG"):
        load_image(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"this is not an image", "not a readable image")],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=rf"bad\.jpg: {message}"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_list_images_reports_empty_folders_and_missing_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "some").mkdir()
    _write(tmp_path / "some" / "b.png", np.zeros((4, 4, 3), np.uint8))
    _write(tmp_path / "some" / "a.jpg", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "some" / "notes.txt").write_text("x")
    images, problems = list_images([tmp_path / "empty", tmp_path / "some", tmp_path / "nope"])
    assert [p.name for p in images] == ["a.jpg", "b.png"]
    assert any("folder holds no image" in p for p in problems)
    assert any("no such file or folder" in p for p in problems)
