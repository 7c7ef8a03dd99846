"""The source interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """One captured frame.

    image: BGR uint8 HxWx3 (full resolution, what faces are cropped from).
    detect_image: an optional lower-resolution copy to detect on (picamera2's lores stream).
    timestamp: wall-clock seconds (time.time()) at capture.
    """

    image: np.ndarray = field(repr=False)
    timestamp: float
    index: int
    source: str
    detect_image: np.ndarray | None = field(default=None, repr=False)


class FrameSource(ABC):
    """Iterate to get frames; iteration stops when a file or video ends.

    Raises :class:`edge.errors.SourceError` when the source cannot be opened or fails while
    reading (a camera unplugged, a stream that drops). Always close it (``with`` does).
    """

    name: str = "source"
    #: Deliver every ``stride``-th frame; the frames in between are skipped as cheaply as the
    #: backend allows (the motion gate's idle rate, set by the grabber between frames). A
    #: frame's ``index`` still counts every frame the source saw.
    stride: int = 1

    def _skip(self, index: int) -> bool:
        """True when frame ``index`` is one the stride skips."""
        return self.stride > 1 and index % self.stride != 0

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield frames until the source ends."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or file."""

    @property
    def live(self) -> bool:
        """True for cameras and streams (frames go stale if not read), False for files."""
        return False
