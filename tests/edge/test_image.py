import os
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from edge.errors import ImageError
from edge.image import image_size_from_header, list_images, load_image


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


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_a_cut_short_file_is_rejected_with_its_name_and_no_decoder_noise(
    tmp_path, astronaut_bgr, kind, capfd
):
    _ok, data = cv2.imencode(f".{kind.lower()}", astronaut_bgr)
    path = tmp_path / f"cut.{kind.lower()}"
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(ImageError) as e:
        load_image(path)
    assert str(e.value) == f"{path}: truncated {kind}"
    assert capfd.readouterr().err == ""  # OpenCV warned on stderr about a cut PNG


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


@pytest.mark.timeout(10)
def test_non_regular_files_are_refused_without_reading_them(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    cases = [(fifo, "a named pipe"), (folder, "a folder"), ("/dev/zero", "a character device")]
    for path, kind in cases:
        with pytest.raises(ImageError) as e:
            load_image(path)
        assert str(e.value) == f"{path}: not a regular file ({kind})"


def test_list_images_lists_a_pipe_for_load_image_to_refuse_but_not_a_folder(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "folder.jpg").mkdir()
    _write(tmp_path / "folder.jpg" / "in.png", np.zeros((4, 4, 3), np.uint8))
    images, problems = list_images([tmp_path, tmp_path / "pipe.jpg"])
    assert [p.name for p in images] == ["in.png", "pipe.jpg", "pipe.jpg"] and not problems


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


# -- size limits, checked from the header before decoding ----------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _zero_rows_png(side: int) -> bytes:
    """A complete, valid side x side black PNG: its zero rows compress 1000:1."""
    z = zlib.compressobj(9)
    row = bytes(1 + 3 * side)
    return _png(side, side, b"".join([*(z.compress(row) for _ in range(side)), z.flush()]))


def _jpeg_header(width: int, height: int) -> bytes:
    """SOI, a JFIF APP0, a baseline SOF0 declaring width x height, a few bytes, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\x00" * 16 + b"\xff\xd9"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("huge.png", _png(50000, 50000, zlib.compress(bytes(1000)))),
        ("huge.jpg", _jpeg_header(60000, 50000)),
    ],
)
def test_crafted_huge_headers_are_refused_in_one_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "pixels is over the 40-megapixel limit" in message
    assert ("50000x50000" if name.endswith(".png") else "60000x50000") in message


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) pytest process
MEASURE_RSS = """
import re, sys
from edge.errors import ImageError
from edge.image import load_image
try:
    load_image(sys.argv[1])
except ImageError as exc:
    print(exc)
status = open("/proc/self/status").read()
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024)
"""


def test_a_real_12000px_png_is_refused_before_decoding_it(tmp_path):
    """Decoding it would take 432 MB for the pixels alone; refused, the process stays small."""
    path = tmp_path / "12k.png"
    path.write_bytes(_zero_rows_png(12000))
    assert path.stat().st_size < 1_000_000
    out = subprocess.run(
        [sys.executable, "-c", MEASURE_RSS, str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == f"{path}: 12000x12000 pixels is over the 40-megapixel limit"
    assert int(out[1]) < 300, f"peak RSS {out[1]} MiB: the image was decoded"


def test_the_pixel_limit_is_a_parameter(tmp_path):
    path = tmp_path / "z.png"
    path.write_bytes(_zero_rows_png(100))
    assert load_image(path).shape == (100, 100, 3)
    with pytest.raises(ImageError, match=r"100x100 pixels is over the 0\.005-megapixel limit"):
        load_image(path, max_pixels=5000)


def test_file_size_is_capped_before_reading(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(_zero_rows_png(100))
    size = path.stat().st_size
    assert load_image(path, max_bytes=size).shape == (100, 100, 3)
    with pytest.raises(ImageError) as e:
        load_image(path, max_bytes=size - 1)
    assert str(e.value) == f"{path}: {size} bytes is over the {size - 1} bytes file size limit"


ENCODINGS = [
    (".png", []),
    (".jpg", []),
    (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    (".bmp", []),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),  # lossy: VP8
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless: VP8L
    (".tif", []),
    (".ppm", []),
    (".pgm", [cv2.IMWRITE_PXM_BINARY, 0]),  # ASCII
    (".pfm", []),
]


@pytest.mark.parametrize(("suffix", "params"), ENCODINGS)
def test_header_sizes_agree_with_the_decoder(suffix, params):
    image = np.random.default_rng(0).integers(0, 255, (23, 37, 3), dtype=np.uint8)
    if suffix == ".pgm":
        image = image[:, :, 0]
    if suffix == ".pfm":
        image = image.astype(np.float32) / 255
    ok, data = cv2.imencode(suffix, image, params)
    assert ok
    assert image_size_from_header(data.tobytes()) == (37, 23)


def test_header_sizes_of_lossy_webp_with_alpha_and_gif():
    """VP8X (the extended WebP that lossy-with-alpha needs) and GIF's logical screen."""
    image = np.random.default_rng(0).integers(0, 255, (23, 37, 4), dtype=np.uint8)
    ok, webp = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert ok and webp.tobytes()[12:16] == b"VP8X"
    assert image_size_from_header(webp.tobytes()) == (37, 23)
    ok, gif = cv2.imencode(".gif", image[:, :, :3])
    assert ok and gif.tobytes()[:6] == b"GIF89a"
    assert image_size_from_header(gif.tobytes()) == (37, 23)


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0", b"\xff\xd8\xff\xe0\x00\x10JF", b"BM12", b"P6\n#"],
)
def test_short_or_broken_headers_are_left_to_the_decoder(data):
    assert image_size_from_header(data) is None


def test_formats_without_a_header_reader_are_held_to_the_limit_after_decoding(tmp_path):
    path = _write(tmp_path / "sun.ras", np.zeros((80, 90, 3), np.uint8))  # Sun raster
    assert image_size_from_header(path.read_bytes()) is None
    assert load_image(path).shape == (80, 90, 3)
    with pytest.raises(ImageError, match=r"sun\.ras: 90x80 pixels is over the"):
        load_image(path, max_pixels=7000)
