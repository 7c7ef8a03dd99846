"""The web app's recognizer and every change it makes to the gallery.

The web app has its own detector, embedder and matcher (:func:`edge.daemon.loop.
recognizer_from_config`, the daemon's settings), behind one lock: LiteRT interpreters and
OpenCV's detector are not thread-safe, and the daemon's are busy with the camera. That costs
a second copy of the model (under 1 MB) and keeps the daemon's loop free of any lock.

Changes follow the gallery's single-writer rule (:func:`edge.gallery.gallery_lock`): take the
lock, load the file as it is now, change it, save atomically. So a change made meanwhile by
``edge enroll`` or the daemon's re-embedding is never overwritten, and the daemon picks the new
file up by itself (it polls the file every 2 s). Faces are found and embedded before the lock
is taken, so the lock is held for a load and a save only.

Faces from visits (naming an unknown group, "not <name>") are the crops the model embedded,
at its input size; the gallery keeps 192 px crops in its own framing, so these are re-cut into
it, which adds no detail for another model (photos uploaded or captured are cut at 192 px).
Photos are identified by a hash of their stored crop, so deleting "this photo" deletes that
photo even if the gallery changed since the page was drawn.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np

from edge.align import GALLERY_FRAMING
from edge.enroll import EnrolResult, add_enrolment_face
from edge.errors import DoorfaceError, GalleryError
from edge.gallery import (
    STORED_CROP_SIZE,
    Gallery,
    gallery_lock,
    load_gallery_for_model,
    person_name,
    recut_crops,
)
from edge.web.errors import Problem

if TYPE_CHECKING:
    from edge.matching import Matcher
    from edge.pipeline import Recognizer
    from edge.scoring import Scoring

log = logging.getLogger(__name__)

T = TypeVar("T")
MIN_FACE = 40  # px: as `edge enroll`


@dataclass(frozen=True)
class PersonSummary:
    name: str
    photos: list[str]  # photo ids, in enrolment order
    negatives: int  # "not <name>" examples


@dataclass
class EnrolReport:
    used: int = 0
    skipped: list[str] = field(default_factory=list)


def valid_name(raw: str) -> str:
    """A person's name by the gallery's one rule (:func:`edge.gallery.person_name`), a bad
    one as Problem(400)."""
    try:
        return person_name(raw)
    except GalleryError as e:
        raise Problem(400, str(e)) from None


def photo_id(crop: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(crop).tobytes()).hexdigest()[:16]


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return buf.tobytes() if ok else b""


def png_to_rgb(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise Problem(409, "a stored face crop is unreadable")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class FaceLibrary:
    def __init__(self, gallery_path: str | Path, recognizer: Recognizer) -> None:
        self.path = Path(gallery_path)
        self.recognizer = recognizer
        self.gallery_error = ""
        self._lock = threading.RLock()  # the recognizer and the loaded gallery
        self._signature: tuple[int, int, int] | None = None
        self._ids: list[str] = []  # photo ids of the loaded gallery, by sample

    @property
    def model_id(self) -> str:
        return self.recognizer.embedder.model_id

    @property
    def scoring(self) -> Scoring:
        return self.recognizer.matcher.scoring

    # -- the loaded gallery ----------------------------------------------------------------
    def matcher(self) -> Matcher:
        """The matcher over the gallery file as it is now (reloaded when the file changed)."""
        with self._lock:
            signature = _file_signature(self.path)
            if signature != self._signature:
                self._signature = signature
                self._reload()
            return self.recognizer.matcher

    def _reload(self) -> None:
        empty = Gallery.create(self.path, self.model_id, *self._sizes())
        try:
            gallery = (
                load_gallery_for_model(self.path, self.recognizer.embedder)
                if self.path.exists()
                else empty
            )
            self.gallery_error = ""
        except DoorfaceError as exc:
            log.error("web: %s", exc)
            gallery, self.gallery_error = empty, str(exc)
        self.recognizer.set_matcher(self.recognizer.matcher.with_gallery(gallery))
        self._ids = [photo_id(c) for c in gallery.crops]

    def _sizes(self) -> tuple[int, int]:
        e = self.recognizer.embedder
        return e.input_size, e.embedding_size

    # -- recognition -----------------------------------------------------------------------
    def recognize(self, image_bgr: np.ndarray) -> list[dict]:
        """Faces in a photo: box [x, y, w, h], name (None: unknown), score, confidence."""
        with self._lock:
            self.matcher()
            results = self.recognizer.recognize_faces(image_bgr)
        return [
            {
                "box": [round(float(v)) for v in r.face.box],
                "name": r.match.name,
                "score": round(r.match.score, 4),
                "confidence": None if r.match.confidence is None else round(r.match.confidence, 4),
            }
            for r in results
        ]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings of crops at the model's input size."""
        with self._lock:
            return self.recognizer.embedder.embed(crops)

    # -- people ----------------------------------------------------------------------------
    def people(self) -> list[PersonSummary]:
        with self._lock:
            gallery = self.matcher().gallery
            names, ids = gallery.names.tolist(), self._ids
            negatives = gallery.negative_names.tolist()
        return [
            PersonSummary(
                p,
                [i for n, i in zip(names, ids, strict=True) if n == p],
                negatives.count(p),
            )
            for p in sorted(set(names))
        ]

    def person(self, name: str) -> PersonSummary:
        for p in self.people():
            if p.name == name:
                return p
        raise Problem(404, f"no person named {name!r}")

    def photo_png(self, name: str, pid: str) -> bytes:
        with self._lock:
            gallery = self.matcher().gallery
            for n, i, crop in zip(gallery.names.tolist(), self._ids, gallery.crops, strict=True):
                if n == name and i == pid:
                    return png_bytes(crop)
        raise Problem(404, f"{name!r} has no photo {pid!r}")

    # -- changes ---------------------------------------------------------------------------
    def enrol_images(self, name: str, images: list[tuple[str, np.ndarray]]) -> EnrolReport:
        """Enrol the one clear face of each image (``(label, BGR image)``) as ``name``; images
        without one are reported as skipped. Problem(422) and nothing written if none has."""
        name = valid_name(name)
        found = EnrolResult()
        embedder = self.recognizer.embedder
        with self._lock:
            for label, image in images:
                add_enrolment_face(
                    found,
                    label,
                    image,
                    self.recognizer.detector,
                    embedder.input_size,
                    MIN_FACE,
                    embedder.preprocessing,
                    source=f"web:{label}",
                )
        if not found.crops:
            raise Problem(422, f"no usable face for {name}: " + "; ".join(found.skipped))
        embeddings = self.embed(np.stack(found.crops))
        stored = np.stack(found.stored_crops)
        self._edit(lambda g: g.enroll(name, stored, embeddings, found.sources))
        return EnrolReport(used=len(found.crops), skipped=found.skipped)

    def enrol_faces(self, name: str, crops: list[np.ndarray], sources: list[str]) -> int:
        """Enrol model-input-size face crops (from visits) as ``name``."""
        name = valid_name(name)
        model_crops = np.stack(crops)
        embeddings = self.embed(model_crops)
        stored = self._stored(model_crops)
        self._edit(lambda g: g.enroll(name, stored, embeddings, sources))
        return len(crops)

    def _stored(self, model_crops: np.ndarray) -> np.ndarray:
        """The gallery's stored crops (GALLERY_FRAMING) of faces cut for the model."""
        how = self.recognizer.embedder.preprocessing
        return recut_crops(model_crops, STORED_CROP_SIZE, GALLERY_FRAMING, source=how)

    def add_negative(self, name: str, crop: np.ndarray) -> None:
        """Keep ``crop`` (a model-input-size face) as "not ``name``"."""
        embedding = self.embed(crop[None])
        stored = self._stored(crop[None])

        def change(g: Gallery) -> None:
            self._require(g, name)
            g.add_negative(name, stored, embedding)

        self._edit(change)

    def rename(self, old: str, new: str) -> str:
        new = valid_name(new)

        def change(g: Gallery) -> None:
            self._require(g, old)
            if new in g.people:
                raise Problem(409, f"{new!r} is already enrolled")
            g.rename(old, new)

        self._edit(change)
        return new

    def delete_person(self, name: str) -> int:
        def change(g: Gallery) -> int:
            self._require(g, name)
            return g.remove(name)

        return self._edit(change)

    def delete_photo(self, name: str, pid: str) -> None:
        def change(g: Gallery) -> None:
            for index, (n, crop) in enumerate(zip(g.names.tolist(), g.crops, strict=True)):
                if n == name and photo_id(crop) == pid:
                    g.remove_sample(index)
                    return
            raise Problem(404, f"{name!r} has no photo {pid!r}")

        self._edit(change)

    @staticmethod
    def _require(g: Gallery, name: str) -> None:
        if name not in g.people:
            raise Problem(404, f"no person named {name!r}")

    def _edit(self, change: Callable[[Gallery], T]) -> T:
        """Lock, load the file as it is now, change, save; then reload what is matched.

        A gallery of another model was re-embedded by :meth:`matcher` before the lock (the
        recognizer's lock is never taken inside the gallery's: one lock order)."""
        embedder = self.recognizer.embedder
        self.matcher()
        with gallery_lock(self.path):
            if self.path.exists():
                gallery = Gallery.load(self.path)
                if gallery.model_id != embedder.model_id:
                    raise Problem(409, f"{self.path}: made by another model; try again")
            else:
                gallery = Gallery.create(self.path, embedder.model_id, *self._sizes())
            result = change(gallery)
            gallery.save()
        with self._lock:
            self._signature = None  # reload on next use
        return result
