"""Reading images from disk into the one pixel layout the pipeline uses: BGR uint8, HxWx3.

Size limits come before decoding. A decoder allocates width x height x channels bytes as soon
as it has read the header, so a 70-byte PNG that declares 50000x50000 pixels asks for 7.5 GB,
and an honest 12000x12000 one took 950 MB of memory in ``edge identify``. :func:`load_image`
therefore reads the dimensions from the header bytes (PNG, JPEG, BMP, WebP, TIFF, GIF, PNM)
and refuses more than :data:`MAX_PIXELS` before any pixel is decoded. The few formats whose
header it does not read (JPEG 2000, OpenEXR, Radiance HDR, AVIF, Sun raster) are decoded under
OpenCV's own limit (2^30 pixels unless ``OPENCV_IO_MAX_IMAGE_PIXELS`` is set before OpenCV is
imported), then held to the same limit: a cost paid only by files nobody photographs faces in.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError
from edge.files import FileError, FileTooLargeError, read_regular

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
)

#: Largest image decoded, in pixels. 40 MP covers phone photos at their default resolution
#: (12-24 MP) and decodes into 120 MB of BGR pixels, which a 1 GB Raspberry Pi survives; a
#: 48-200 MP full-sensor photo is refused (scale it down: a face needs a few hundred pixels).
MAX_PIXELS = 40_000_000

#: Largest file read, in bytes: bounds the memory held before the header is even looked at. A
#: 40 MP photo is 5-25 MB as JPEG; as PNG it can be larger, and is refused (save it as JPEG).
MAX_FILE_BYTES = 64_000_000


class ImageTooLargeError(ImageError):
    """An image over the byte or pixel limit (the web app answers 413 for it)."""


#: JPEG start-of-frame markers (SOF0-SOF15 less DHT, JPG and DAC), which carry the frame size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Convert grey, grey+alpha, BGRA or 16-bit images to 3-channel BGR uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 2:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels == 3:
        return np.ascontiguousarray(image)
    raise ImageError(f"unsupported image with {channels} channels")


def load_image(
    path: str | Path, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES
) -> np.ndarray:
    """Load an image as BGR uint8 (HxWx3), whatever its colour layout on disk.

    Raises ImageError, naming the file, for a missing, empty, truncated or undecodable file,
    and for one over ``max_bytes`` or ``max_pixels`` (checked from the header, before
    decoding). OpenCV decodes truncated JPEGs silently with grey tails; we detect a missing
    end-of-image marker and reject the file instead of embedding half a face.
    """
    path = Path(path)
    return decode_image(_read_capped(path, max_bytes), path, max_pixels=max_pixels)


def decode_image(data: bytes, name: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes (a file's, or an upload's) as BGR uint8 with :func:`load_image`'s
    checks: ImageError naming ``name`` for empty, truncated or undecodable bytes, and
    ImageTooLargeError for more than ``max_pixels`` (read from the header before decoding).
    The caller bounds ``len(data)``."""
    if not data:
        raise ImageError(f"{name}: empty file")
    size = image_size_from_header(data)
    if size is not None:
        _check_pixels(name, size, max_pixels)
    # cut short (an interrupted copy or upload): said here, before the decoder warns on stderr
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]:
        raise ImageError(f"{name}: truncated JPEG")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-64:]:
        raise ImageError(f"{name}: truncated PNG")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV's own pixel limit, or a decoder assertion on a crafted file
        raise ImageError(f"{name}: not a readable image (OpenCV refused to decode it)") from None
    if image is None or image.size == 0:
        raise ImageError(f"{name}: not a readable image")
    _check_pixels(name, (image.shape[1], image.shape[0]), max_pixels)  # headers not read above
    try:
        return to_bgr(image)
    except ImageError as exc:
        raise ImageError(f"{name}: {exc}") from None


def image_size_from_header(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, BMP, WebP, TIFF, GIF or PNM file.

    None for another format or a header too short or malformed to read (the decoder then
    refuses the file itself). Reads only the first bytes, except TIFF (the first IFD, wherever
    it is) and JPEG (segment by segment up to the frame header).
    """
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack_from(">II", data, 16)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith(b"BM"):
            return _bmp_size(data)
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\0", b"MM\0*"):
            return _tiff_size(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack_from("<HH", data, 6)
        if re.match(rb"P[1-6Ff]\s", data[:3]):
            return _pnm_size(data)
    except (struct.error, ValueError, IndexError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments after SOI up to the first start-of-frame."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # segments without a length
            i += 2
        elif marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        elif marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, i + 5)
            return width, height
        else:
            i += 2 + struct.unpack_from(">H", data, i + 2)[0]
    return None


def _bmp_size(data: bytes) -> tuple[int, int]:
    if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<ii", data, 18)  # negative height: stored top-down
    return abs(width), abs(height)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature byte, then 14-bit width-1 and height-1
        bits = struct.unpack_from("<I", data, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:  # extended: 24-bit canvas width-1, height-1
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) from the first IFD (the page OpenCV reads)."""
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack_from(order + "I", data, 4)[0]
    entries = struct.unpack_from(order + "H", data, ifd)[0]
    found: dict[int, int] = {}
    for k in range(entries):
        at = ifd + 2 + 12 * k
        tag, kind, count = struct.unpack_from(order + "HHI", data, at)
        if tag in (256, 257) and count == 1 and kind in (3, 4):  # SHORT or LONG
            found[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), data, at + 8)[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm_size(data: bytes) -> tuple[int, int]:
    """PBM/PGM/PPM/PFM: magic, then width and height as text, with optional # comments."""
    tokens = re.sub(rb"#[^\n]*", b" ", data[2:1024]).split()
    return int(tokens[0]), int(tokens[1])


def _check_pixels(path: str | Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {width}x{height} pixels is over the {max_pixels / 1e6:g}-megapixel limit"
        )


def _read_capped(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; ImageError if it is missing, unreadable, not a regular file or over
    ``max_bytes`` (:func:`edge.files.read_regular`: a FIFO named x.jpg would wait forever for a
    writer, and /dev/zero would never end)."""
    try:
        return read_regular(path, max_bytes)
    except FileTooLargeError as exc:
        raise ImageTooLargeError(str(exc)) from None
    except FileError as exc:
        raise ImageError(str(exc)) from None


def list_images(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Expand files and folders (recursively) into image paths, sorted within each folder.

    Returns (images, problems): problems are one-line messages for paths that do not exist
    or folders that hold no image. Whatever exists and is not a folder is listed, a named pipe
    or a device too: :func:`load_image` refuses it, as a counted skip, without reading it.
    """
    images: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()
            )
            if not found:
                problems.append(f"{path}: folder holds no image")
            images.extend(found)
        elif path.exists():
            images.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return images, problems
