"""Raspberry Pi cameras through picamera2 (from apt: python3-picamera2), imported lazily.

Two streams: detection runs on the small ``lores`` stream, faces are cropped from ``main``.
picamera2's "RGB888" format is, despite its name, B,G,R in memory: exactly OpenCV's BGR, so
the main stream needs no conversion. The lores stream is YUV420 on most Pi models and is
converted to BGR here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from edge.errors import SourceError
from edge.sources.base import Frame, FrameSource


def _picamera2() -> Any:
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise SourceError(
            "picamera: picamera2 is not installed (on Raspberry Pi OS: sudo apt install "
            "python3-picamera2, and create the venv with --system-site-packages)"
        ) from None
    return Picamera2


class PiCameraSource(FrameSource):
    def __init__(
        self,
        index: int = 0,
        width: int = 1280,
        height: int = 960,
        lores_width: int = 320,
        lores_height: int = 240,
        fps: float = 15,
    ) -> None:
        self.name = f"picamera:{index}"
        picamera2 = _picamera2()
        try:
            self._cam = picamera2(index)
            config = self._cam.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"},
                lores={"size": (lores_width, lores_height), "format": "YUV420"},
                controls={"FrameRate": fps},
            )
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:  # picamera2/libcamera raise many kinds
            raise SourceError(f"{self.name}: cannot start camera ({exc})") from None
        self._lores_size = (lores_width, lores_height)

    @property
    def live(self) -> bool:
        return True

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            try:
                request = self._cam.capture_request()
                if self._skip(index):  # released without copying
                    request.release()
                    index += 1
                    continue
                try:
                    main = np.array(request.make_array("main"))
                    lores = request.make_array("lores")
                finally:
                    request.release()
            except Exception as exc:
                raise SourceError(f"{self.name}: capture failed ({exc})") from None
            w, h = self._lores_size
            small = cv2.cvtColor(lores[: h * 3 // 2, :w], cv2.COLOR_YUV2BGR_I420)
            yield Frame(main[:, :, :3], time.time(), index, self.name, detect_image=small)
            index += 1

    def close(self) -> None:
        try:
            self._cam.stop()
            self._cam.close()
        except Exception:
            pass
