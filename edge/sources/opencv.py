"""OpenCV ``VideoCapture``: USB/V4L2 cameras by index, RTSP/HTTP streams, video files."""

from __future__ import annotations

import time
from collections.abc import Iterator

import cv2

from edge.errors import SourceError
from edge.image import to_bgr
from edge.sources.base import Frame, FrameSource


class OpenCVSource(FrameSource):
    """A camera or stream that stops delivering raises SourceError (the daemon reconnects);
    a video file that reaches its end simply ends.

    width/height/fps are requests to the camera; it may pick the nearest mode it has.
    """

    def __init__(
        self,
        target: int | str,
        width: int = 0,
        height: int = 0,
        fps: float = 0,
        max_failures: int = 25,
    ) -> None:
        self.name = str(target)
        self._target = target
        self._is_file = isinstance(target, str) and "://" not in target
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"{target}: cannot open (no such camera, stream or video)")
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        self._max_failures = max_failures

    @property
    def live(self) -> bool:
        return not self._is_file

    def frames(self) -> Iterator[Frame]:
        index, failures = 0, 0
        while True:
            ok, image = self._cap.grab(), None  # waits for the camera's next frame
            skip = self._skip(index)  # decided on arrival, with the daemon's latest stride
            if ok and not skip:  # skipped: never converted to BGR (V4L2 MJPG: never decoded)
                ok, image = self._cap.retrieve()
            if not ok or (not skip and (image is None or image.size == 0)):
                if self._is_file:
                    return
                failures += 1
                if failures >= self._max_failures:
                    raise SourceError(
                        f"{self.name}: stopped delivering frames ({failures} failed reads)"
                    )
                time.sleep(0.02)
                continue
            failures = 0
            if not skip:
                yield Frame(to_bgr(image), time.time(), index, self.name)
            index += 1

    def close(self) -> None:
        self._cap.release()
