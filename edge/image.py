"""Reading images from disk into the one pixel layout the pipeline uses: BGR uint8, HxWx3."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
)


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


def load_image(path: str | Path) -> np.ndarray:
    """Load an image as BGR uint8 (HxWx3), whatever its colour layout on disk.

    Raises ImageError, naming the file, for a missing, empty, truncated or undecodable file.
    OpenCV decodes truncated JPEGs silently with grey tails; we detect a missing end-of-image
    marker and reject the file instead of embedding half a face.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise ImageError(f"{path}: empty file")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]:
        raise ImageError(f"{path}: truncated JPEG")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageError(f"{path}: not a readable image")
    try:
        return to_bgr(image)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None


def list_images(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Expand files and folders (recursively) into image paths, sorted within each folder.

    Returns (images, problems): problems are one-line messages for paths that do not exist
    or folders that hold no image.
    """
    images: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{path}: folder holds no image")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return images, problems
