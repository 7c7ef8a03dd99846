"""Frame sources behind one interface: an iterator of :class:`Frame` with ``with`` support.

``open_source(spec)`` picks the backend from the spec:

- ``picamera`` / ``picamera:N``: a Raspberry Pi camera through picamera2 (imported lazily);
- an integer (``0``): a USB/V4L2 camera through OpenCV;
- ``rtsp://…``, ``http(s)://…``, or a video file: OpenCV ``VideoCapture``;
- a folder, an image file, or a glob (``photos/*.jpg``): still images, one frame each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.image import IMAGE_SUFFIXES
from edge.sources.base import Frame, FrameSource

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mjpeg", ".h264"})


def open_source(spec: str, **options: Any) -> FrameSource:
    """Open a frame source from a spec string; raises SourceError if it cannot."""
    spec = str(spec).strip()
    if spec == "picamera" or spec.startswith("picamera:"):
        from edge.sources.picamera import PiCameraSource

        index = int(spec.split(":", 1)[1]) if ":" in spec else 0
        return PiCameraSource(index, **options)
    if spec.isdigit() or "://" in spec:
        from edge.sources.opencv import OpenCVSource

        return OpenCVSource(int(spec) if spec.isdigit() else spec, **options)
    path = Path(spec)
    if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
        from edge.sources.opencv import OpenCVSource

        return OpenCVSource(spec, **options)
    if path.is_dir() or any(ch in spec for ch in "*?[") or path.suffix.lower() in IMAGE_SUFFIXES:
        from edge.sources.files import ImageFilesSource

        return ImageFilesSource(spec, **options)
    if path.is_file():  # an unknown suffix: let OpenCV try it as a video
        from edge.sources.opencv import OpenCVSource

        return OpenCVSource(spec, **options)
    from edge.errors import SourceError

    raise SourceError(f"{spec}: not a camera, URL, video, image, folder or glob that exists")


__all__ = ["Frame", "FrameSource", "open_source"]
