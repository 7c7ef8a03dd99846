"""Still images as frames: a folder (recursively, sorted), one image, or a glob."""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from edge.errors import ImageError, SourceError
from edge.image import IMAGE_SUFFIXES, load_image
from edge.sources.base import Frame, FrameSource

log = logging.getLogger(__name__)


class ImageFilesSource(FrameSource):
    """Unreadable images are logged and counted in ``skipped``, not fatal."""

    def __init__(self, spec: str, loop: bool = False) -> None:
        self.name = spec
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files = [path]
        else:
            files = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            files = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise SourceError(f"{spec}: no images found")
        self.files = files
        self.loop = loop
        self.skipped = 0

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            for path in self.files:
                if self._skip(index):  # not even read
                    index += 1
                    continue
                try:
                    image = load_image(path)
                except ImageError as exc:
                    self.skipped += 1
                    log.warning("skipped %s", exc)
                    continue
                yield Frame(image, time.time(), index, str(path))
                index += 1
            if not self.loop:
                return
