import cv2
import numpy as np
import pytest

from edge.errors import SourceError
from edge.sources import open_source


def test_image_folder_source_skips_bad_files(tmp_path, astronaut_bgr):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut_bgr)
    (tmp_path / "b.jpg").write_bytes(b"broken")
    cv2.imwrite(str(tmp_path / "c.png"), astronaut_bgr[:, :, 0])  # grey
    with open_source(str(tmp_path)) as source:
        frames = list(source)
        assert source.skipped == 1
    assert [f.index for f in frames] == [0, 1]
    assert all(f.image.shape == astronaut_bgr.shape for f in frames)


def test_glob_source(tmp_path, astronaut_bgr):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), astronaut_bgr)
    assert len(list(open_source(str(tmp_path / "f*.png")))) == 3


def test_video_file_source_ends(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(7):
        writer.write(np.full((48, 64, 3), i * 30, np.uint8))
    writer.release()
    with open_source(str(path)) as source:
        frames = list(source)
    assert len(frames) == 7 and frames[0].image.shape == (48, 64, 3)


@pytest.mark.parametrize("spec", ["/no/such/thing", "nothing-*.png"])
def test_missing_sources_say_so(spec):
    with pytest.raises(SourceError):
        open_source(spec)


def test_picamera_off_a_pi_is_a_clear_error():
    with pytest.raises(SourceError, match="picamera2 is not installed"):
        open_source("picamera")


def test_camera_that_does_not_exist():
    with pytest.raises(SourceError, match="cannot open"):
        open_source("97")


def test_a_stride_skips_frames_without_reading_them_and_keeps_their_index(tmp_path, astronaut_bgr):
    import cv2

    from edge.sources.files import ImageFilesSource
    from edge.sources.opencv import OpenCVSource

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), astronaut_bgr[:64, :64])
    (tmp_path / "3.png").write_bytes(b"not an image")  # never read at stride 2: not skipped
    files = ImageFilesSource(str(tmp_path))
    files.stride = 2
    assert [f.index for f in files] == [0, 2, 4] and files.skipped == 0
    video = tmp_path / "v.avi"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 64))
    for _ in range(7):
        out.write(astronaut_bgr[:64, :64])
    out.release()
    with OpenCVSource(str(video)) as source:
        source.stride = 3
        frames = list(source)
    assert [f.index for f in frames] == [0, 3, 6] and frames[0].image.shape == (64, 64, 3)
