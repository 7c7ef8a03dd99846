"""The gallery: enrolled people, their aligned crops and embeddings, and the model that made them.

One ``.npz`` file, written atomically (temp file, fsync, rename) with mode 0600: these are
biometric data. Through a symlink, the file it points to is written (the link stays). A gallery
records the sha256 of the model that made its embeddings and is never matched with another
model's embeddings. It also keeps every enrolment face as a 192x192 aligned crop
(:data:`STORED_CROP_SIZE`, cut by :func:`edge.align.align_face` from the same landmarks as the
model's own crop, in :data:`edge.align.GALLERY_FRAMING`: dlib's chip at its own scale with room
around it for doorface's framing), whatever the model's input size, so that
:meth:`Gallery.rebuild`, and the daemon by itself (:func:`load_gallery_for_model`), can re-embed
everyone for a new model without asking people to stand in front of the camera again.

Embeddings are made from the crop aligned directly at the model's input size (as the trainer
makes its crops), not from the stored crop: only a rebuild re-cuts stored crops for the model's
framing. Since the stored framing holds both models' framings at their scale, a rebuild cuts
the model's crop from real pixels: the crops of 2026-12-07 and before (112 px, doorface's own
framing) lacked the bottom tenth of dlib's chip and 1.5x its resolution, and re-embedding them
for `doorface-small` lost 3 of 72 door visits (docs/MODEL.md, "Galleries that keep dlib's
chip"). Galleries written with those crops (or, before them, with crops at the model's input
size) record their framing (``crop_framing``, absent: doorface's), load and rebuild as they are,
and are re-cut into the stored framing the first time a face is added to them (which adds no
pixels: re-enrol those people to give another model their full resolution).

Negative examples ("this is not Alice", from the web app): faces of someone who was wrongly
named as an enrolled person, kept per person with their crop (so they are re-embedded with the
rest) and used by :mod:`edge.matching` to reject that look-alike. Removing the person removes
them; galleries without them load as before.

One writer at a time: every load-change-save (``edge enroll``/``gallery``, the web app, the
daemon's re-embedding) holds :func:`gallery_lock`, an ``flock`` on ``<gallery>.lock`` beside the
file, and loads the gallery *inside* the lock, so no writer overwrites another's change.
Readers need no lock: the file is replaced atomically.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import io
import json
import logging
import os
import time
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edge.align import FRAMINGS, GALLERY_FRAMING, PREPROCESS_VERSION, align_face, realign_crops
from edge.errors import GalleryError
from edge.files import FileError, FileMissingError, check_regular
from edge.manifest import write_bytes_atomic

log = logging.getLogger(__name__)

SCHEMA = "doorface.gallery/1"
FILE_MODE = 0o600

#: Side of the aligned crops a gallery keeps (in GALLERY_FRAMING, whose template is given for
#: this side), independent of the model's input size: dlib's 150 px chip at its own scale, and
#: doorface's 112 px framing at 1.5x, are both inside.
STORED_CROP_SIZE = int(FRAMINGS[GALLERY_FRAMING][1])

#: How long a writer waits for another writer's lock before giving up with a GalleryError.
LOCK_TIMEOUT_S = 30.0


class CropEmbedder(Protocol):
    """What a rebuild needs of :class:`edge.embedder.Embedder`."""

    @property
    def model_id(self) -> str: ...
    @property
    def input_size(self) -> int: ...
    @property
    def preprocessing(self) -> str: ...
    @property
    def embedding_size(self) -> int: ...
    def embed(self, crops: np.ndarray) -> np.ndarray: ...


def stored_crop(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The crop a gallery keeps of a face: RGB uint8, STORED_CROP_SIZE square in
    GALLERY_FRAMING, aligned by the one alignment function from the same 5 landmarks as the
    crop the model embeds."""
    return align_face(image_bgr, landmarks, STORED_CROP_SIZE, GALLERY_FRAMING)


def resized_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """(N, s, s, 3) crops at ``size`` x ``size``: INTER_AREA to shrink (averages, no aliasing),
    INTER_LINEAR to enlarge; the same array when already that size."""
    if crops.shape[1] == size:
        return crops
    interp = cv2.INTER_AREA if crops.shape[1] > size else cv2.INTER_LINEAR
    out = np.empty((len(crops), size, size, 3), np.uint8)
    for i, crop in enumerate(crops):
        out[i] = cv2.resize(crop, (size, size), interpolation=interp)
    return out


def recut_crops(
    crops: np.ndarray, size: int, preprocessing: str, source: str = PREPROCESS_VERSION
) -> np.ndarray:
    """Crops aligned for ``source`` as a model aligned for ``preprocessing`` takes them at
    ``size`` (or the other way round): resized when both frame the face alike
    (:func:`resized_crops`), else re-cut to the other template (:func:`edge.align.realign_crops`)."""
    if preprocessing == source:
        return resized_crops(crops, size)
    return realign_crops(crops, size, preprocessing, source)


@dataclass(frozen=True)
class Person:
    name: str
    samples: int


#: Longest person's name (characters): names travel in URLs, MQTT topics and HA entity names.
MAX_NAME = 64


def person_name(raw: str) -> str:
    """A person's name as typed, NFC-normalised and stripped; GalleryError unless 1-64
    printable characters without '/' or '\\', and not '.' or '..'. The one rule for names:
    ``edge enroll``, ``edge gallery rename`` and the web app all come here (names travel in
    URLs, where a browser resolves '..' away, and in one-name-per-line listings)."""
    name = unicodedata.normalize("NFC", str(raw)).strip()
    if not name or len(name) > MAX_NAME:
        raise GalleryError(f"a name has 1 to {MAX_NAME} characters, got {len(name)}")
    if any(c in "/\\" or not c.isprintable() for c in name):
        raise GalleryError(f"a name cannot hold '/', '\\' or control characters: {name!r}")
    if name in (".", ".."):
        raise GalleryError("a name cannot be '.' or '..'")
    return name


class Gallery:
    """In-memory gallery; call :meth:`save` to persist. Not thread-safe: one writer."""

    def __init__(
        self,
        path: str | Path,
        model_id: str,
        input_size: int,
        embedding_size: int,
        names: np.ndarray | None = None,
        embeddings: np.ndarray | None = None,
        crops: np.ndarray | None = None,
        sources: np.ndarray | None = None,
        created: str = "",
        negatives: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        crop_framing: str = GALLERY_FRAMING,
    ) -> None:
        self.path = Path(path)
        self.crop_framing = crop_framing  # how crops and negative crops are aligned
        self.model_id = model_id
        self.input_size = input_size
        self.embedding_size = embedding_size
        self.names = names if names is not None else np.zeros(0, dtype="<U1")
        self.embeddings = (
            embeddings if embeddings is not None else np.zeros((0, embedding_size), np.float32)
        )
        self.crops = (
            crops
            if crops is not None
            else np.zeros((0, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8)
        )
        self.sources = sources if sources is not None else np.zeros(0, dtype="<U1")
        self.created = created or _now()
        # "not <name>" examples: whose look-alike each is, its embedding and its stored crop
        self.negative_names, self.negative_embeddings, self.negative_crops = negatives or (
            np.zeros(0, dtype="<U1"),
            np.zeros((0, embedding_size), np.float32),
            np.zeros((0, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8),
        )

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | Path, model_id: str, input_size: int, embedding_size: int
    ) -> Gallery:
        return cls(path, model_id, input_size, embedding_size)

    @classmethod
    def load(cls, path: str | Path) -> Gallery:
        """Read a gallery; GalleryError (naming the file) if missing, corrupt or inconsistent:
        names not 1-D text, crops not uint8, embeddings not finite unit vectors."""
        path = Path(path)
        try:
            check_regular(path)  # np.load of a named pipe would wait forever
        except FileMissingError:
            raise GalleryError(f"{path}: no such gallery (enrol someone first)") from None
        except FileError as exc:
            raise GalleryError(str(exc)) from None
        meta, arrays = _read(path)
        negatives = (
            (arrays["negative_names"], arrays["negative_embeddings"], arrays["negative_crops"])
            if "negative_names" in arrays
            else None
        )
        framing = meta.get("crop_framing", PREPROCESS_VERSION)  # absent: 2026-12-07 and before
        if framing not in FRAMINGS:
            raise GalleryError(f"{path}: crops in a framing this edge does not know: {framing!r}")
        try:
            gallery = cls(
                path,
                str(meta["model_id"]),
                int(meta["input_size"]),
                int(meta["embedding_size"]),
                arrays["names"],
                arrays["embeddings"],
                arrays["crops"],
                arrays["sources"],
                str(meta.get("created", "")),
                negatives,
                framing,
            )
        except (KeyError, TypeError, ValueError):
            raise GalleryError(f"{path}: corrupt gallery metadata") from None
        if gallery.input_size <= 0 or gallery.embedding_size <= 0:
            raise GalleryError(f"{path}: corrupt gallery metadata (sizes must be > 0)")
        gallery._check_shapes()
        _check_embeddings(path, "embeddings", gallery.embeddings)
        _check_embeddings(path, "negative_embeddings", gallery.negative_embeddings)
        return gallery

    @classmethod
    def open_or_create(
        cls, path: str | Path, model_id: str, input_size: int, embedding_size: int
    ) -> Gallery:
        """Load the gallery if the file exists (checking its model), else start an empty one.

        Fails early, before any photo is processed, if the gallery could not be written."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        folder = _target(path).parent  # a symlinked gallery is written where it points
        if not os.access(folder, os.W_OK):
            raise GalleryError(f"{path}: cannot write the gallery (no permission in {folder})")
        if path.exists():
            gallery = cls.load(path)
            gallery.check_model(model_id)
            return gallery
        return cls.create(path, model_id, input_size, embedding_size)

    # -- queries ------------------------------------------------------------------------
    @property
    def people(self) -> list[str]:
        """Enrolled names, sorted."""
        return sorted(set(self.names.tolist()))

    def persons(self) -> list[Person]:
        names, counts = np.unique(self.names, return_counts=True)
        return [Person(str(n), int(c)) for n, c in zip(names, counts, strict=True)]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def crop_size(self) -> int:
        """Side of the stored crops: STORED_CROP_SIZE, or 112 or the model's input size in
        galleries written before (doorface's framing)."""
        return int(self.crops.shape[1])

    def check_model(self, model_id: str) -> None:
        """Raise GalleryError unless this gallery's embeddings were made by ``model_id``."""
        if model_id != self.model_id:
            raise GalleryError(
                f"{self.path}: made by model {self.model_id[:12]}, not by this model "
                f"{model_id[:12]}; run 'edge gallery rebuild --gallery {self.path}'"
            )

    # -- changes ------------------------------------------------------------------------
    def enroll(
        self, name: str, crops: np.ndarray, embeddings: np.ndarray, sources: list[str]
    ) -> None:
        """Add a person's samples: ``crops`` are the stored crops (:func:`stored_crop`),
        ``embeddings`` the model's embeddings of the same faces aligned at its input size."""
        name = person_name(name)
        crops = np.asarray(crops, np.uint8)
        embeddings = np.asarray(embeddings, np.float32)
        side = STORED_CROP_SIZE
        if crops.shape[1:] != (side, side, 3):
            raise GalleryError(f"crops of shape {crops.shape[1:]}: a gallery keeps {side}px crops")
        if embeddings.shape != (len(crops), self.embedding_size):
            raise GalleryError(f"embeddings of shape {embeddings.shape} for {len(crops)} crops")
        _check_embeddings(self.path, "embeddings", embeddings)
        if len(sources) != len(crops):
            raise GalleryError(f"{len(sources)} sources for {len(crops)} crops")
        self._to_gallery_framing()  # a gallery from before
        self.names = np.concatenate([self.names, np.array([name] * len(crops))])
        self.embeddings = np.concatenate([self.embeddings, embeddings])
        self.crops = np.concatenate([self.crops, crops])
        self.sources = np.concatenate([self.sources, np.array(sources, dtype=str)])

    def remove(self, name: str) -> int:
        """Remove a person with their negative examples; returns how many samples went.
        GalleryError if unknown."""
        keep = self.names != name
        removed = int((~keep).sum())
        if not removed:
            raise GalleryError(f"{self.path}: no person named {name!r}")
        self._select(keep)
        self._select_negatives(self.negative_names != name)
        return removed

    def remove_sample(self, index: int) -> str:
        """Remove one sample; returns its person's name. The person's last sample takes
        their negative examples with it. GalleryError for an index out of range."""
        if not 0 <= index < len(self):
            raise GalleryError(f"{self.path}: no sample {index} (it has {len(self)})")
        name = str(self.names[index])
        keep = np.ones(len(self), bool)
        keep[index] = False
        self._select(keep)
        if name not in self.names:
            self._select_negatives(self.negative_names != name)
        return name

    def add_negative(self, name: str, crops: np.ndarray, embeddings: np.ndarray) -> None:
        """Keep faces that are *not* ``name`` although they matched them ("not Alice"): stored
        crops (:func:`stored_crop`) and the model's embeddings of them. GalleryError if nobody
        is called ``name``."""
        if name not in self.people:
            raise GalleryError(f"{self.path}: no person named {name!r}")
        crops = np.asarray(crops, np.uint8)
        embeddings = np.asarray(embeddings, np.float32)
        side = STORED_CROP_SIZE
        if crops.shape[1:] != (side, side, 3) or embeddings.shape != (
            len(crops),
            self.embedding_size,
        ):
            raise GalleryError(f"negative examples of shapes {crops.shape}, {embeddings.shape}")
        _check_embeddings(self.path, "negative embeddings", embeddings)
        self._to_gallery_framing()  # a gallery from before
        self.negative_names = np.concatenate([self.negative_names, np.array([name] * len(crops))])
        self.negative_embeddings = np.concatenate([self.negative_embeddings, embeddings])
        self.negative_crops = np.concatenate([self.negative_crops, crops])

    def rename(self, old: str, new: str) -> None:
        new = person_name(new)
        if old not in self.people:
            raise GalleryError(f"{self.path}: no person named {old!r}")
        if new in self.people:
            raise GalleryError(f"{self.path}: {new!r} is already enrolled (remove it first)")
        names = self.names.astype(object)
        names[names == old] = new
        self.names = names.astype(str)
        negative = self.negative_names.astype(object)
        negative[negative == old] = new
        self.negative_names = negative.astype(str)

    def rebuild(self, embedder: CropEmbedder) -> None:
        """Re-embed every stored crop with another model, resized to its input size (re-cut
        for its template when it takes another framing: :func:`edge.align.realign_crops`);
        the stored crops themselves stay as they are. GalleryError if some crops were not
        kept."""
        self._refuse_blank(embedder.model_id)
        size = embedder.input_size

        def embedded(crops: np.ndarray) -> np.ndarray:
            if not len(crops):
                return np.zeros((0, embedder.embedding_size), np.float32)
            framed = recut_crops(crops, size, embedder.preprocessing, self.crop_framing)
            return embedder.embed(framed)

        self.embeddings = embedded(self.crops)
        self.negative_embeddings = embedded(self.negative_crops)
        self.model_id = embedder.model_id
        self.input_size = size
        self.embedding_size = embedder.embedding_size

    def _to_gallery_framing(self) -> None:
        """Re-cut crops of an older gallery (another framing or size) into GALLERY_FRAMING at
        STORED_CROP_SIZE, so that new faces can join them in one array; nothing for a gallery
        already there. Black where the old crop had no pixels: nothing is gained."""
        if self.crop_framing == GALLERY_FRAMING:
            return
        side, old = STORED_CROP_SIZE, self.crop_framing
        self.crops = recut_crops(self.crops, side, GALLERY_FRAMING, old)
        self.negative_crops = recut_crops(self.negative_crops, side, GALLERY_FRAMING, old)
        self.crop_framing = GALLERY_FRAMING

    def check_rebuildable(self, model_id: str) -> None:
        """GalleryError unless the daemon can re-embed this gallery for ``model_id`` by
        itself (:func:`load_gallery_for_model`): one with no samples stays its own model's
        (nothing to re-embed), and every sample needs its stored crop."""
        if not len(self):
            self.check_model(model_id)
        self._refuse_blank(model_id)

    def _refuse_blank(self, model_id: str) -> None:
        blank = self.blank_crops()
        if blank:
            raise GalleryError(
                f"{self.path}: cannot re-embed for model {model_id[:12]}: {blank} of "
                f"its {len(self)} samples have no stored face crop (enrol those people again)"
            )

    def blank_crops(self) -> int:
        """How many samples have an all-black crop (none kept): those cannot be re-embedded."""
        return int((self.crops.max(axis=(1, 2, 3), initial=0) == 0).sum())

    def save(self) -> None:
        """Atomic write, mode 0600: a crash leaves the old gallery or the new one, never half."""
        self._check_shapes()
        meta = {
            "schema": SCHEMA,
            "model_id": self.model_id,
            "input_size": self.input_size,
            "embedding_size": self.embedding_size,
            "crop_framing": self.crop_framing,
            "created": self.created,
            "updated": _now(),
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            meta=np.array(json.dumps(meta)),
            names=self.names.astype(str),
            embeddings=self.embeddings.astype(np.float32),
            crops=self.crops.astype(np.uint8),
            sources=self.sources.astype(str),
            negative_names=self.negative_names.astype(str),
            negative_embeddings=self.negative_embeddings.astype(np.float32),
            negative_crops=self.negative_crops.astype(np.uint8),
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(_target(self.path), buffer.getvalue(), mode=FILE_MODE)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None

    # -- internals ----------------------------------------------------------------------
    def _select(self, keep: np.ndarray) -> None:
        self.names, self.embeddings = self.names[keep], self.embeddings[keep]
        self.crops, self.sources = self.crops[keep], self.sources[keep]

    def _select_negatives(self, keep: np.ndarray) -> None:
        self.negative_names = self.negative_names[keep]
        self.negative_embeddings = self.negative_embeddings[keep]
        self.negative_crops = self.negative_crops[keep]

    def _check_shapes(self) -> None:
        n, k = len(self.names), len(self.negative_names)
        side = self.crop_size if self.crops.ndim == 4 else 0
        negative_side = self.negative_crops.shape[1] if self.negative_crops.ndim == 4 else 0
        if self.crop_framing == GALLERY_FRAMING:
            sides_ok = side == negative_side == STORED_CROP_SIZE
        else:  # older galleries: any square side, crops and negatives each their own
            sides_ok = side > 0 and negative_side > 0
        ok = (
            sides_ok
            and self.embeddings.shape == (n, self.embedding_size)
            and self.crops.shape == (n, side, side, 3)
            and self.sources.shape == (n,)
            and self.negative_embeddings.shape == (k, self.embedding_size)
            and self.negative_crops.shape == (k, negative_side, negative_side, 3)
        )
        if not ok:
            raise GalleryError(f"{self.path}: corrupt gallery (arrays disagree in shape)")


@contextmanager
def gallery_lock(path: str | Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the single-writer lock of the gallery at ``path`` (``<gallery>.lock``, mode 0600).

    A symlinked gallery is locked (and saved, :meth:`Gallery.save`) at the file it points to.
    Load the gallery inside the block, change it, save it: then no writer (CLI, web app,
    daemon) overwrites another's change. An ``flock``: released when the holder exits, even
    killed. Waits up to ``timeout`` seconds, then GalleryError naming the lock file."""
    path = Path(path)
    real = _target(path)  # the gallery reached through a symlink shares its target's lock
    lock = real.with_name(real.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise GalleryError(
                        f"{lock}: another writer has held the gallery for {timeout:g} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def load_gallery_for_model(path: str | Path, embedder: CropEmbedder) -> Gallery:
    """The gallery at ``path``, with embeddings by ``embedder``'s model: the daemon's load.

    A gallery made by another model is re-embedded from its stored crops (one INFO line) and
    saved in place, atomically and 0600, so the next load is cheap. If the file changed while
    re-embedding (someone enrolled), it is not overwritten: the caller sees the change and loads
    again. If it cannot be written (a read-only state folder), the re-embedded gallery is used
    from memory and a warning logged. GalleryError for a missing or corrupt file, and for a
    gallery of another model with no samples, or with samples whose crops were not kept.
    """
    before = _signature(path)
    gallery = Gallery.load(path)
    if gallery.model_id == embedder.model_id:
        return gallery
    gallery.check_rebuildable(embedder.model_id)
    old, started = gallery.model_id, time.perf_counter()
    gallery.rebuild(embedder)  # GalleryError if some crops were not kept
    log.info(
        "gallery: re-embedded %d crops of %d people from model %s to %s in %.1f s",
        len(gallery),
        len(gallery.people),
        old[:12],
        gallery.model_id[:12],
        time.perf_counter() - started,
    )
    try:
        with gallery_lock(path):
            if _signature(path) != before:
                log.warning("gallery: %s changed while re-embedding; not overwriting it", path)
                return gallery
            gallery.save()
    except GalleryError as exc:
        log.warning("gallery: using the re-embedded gallery from memory only: %s", exc)
    return gallery


#: Arrays of a gallery file that must hold 1-D text, and floats; the crops hold uint8 pixels.
_TEXT = ("names", "sources", "negative_names")
_FLOATS = ("embeddings", "negative_embeddings")

#: How far from 1 an embedding's length may be: the models' embeddings are unit vectors.
UNIT_TOLERANCE = 1e-2


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a gallery file, arrays checked for their kind (not yet
    their shapes); GalleryError naming the file for anything else."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"])) if "meta" in data else {}
            if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
                raise GalleryError(f"{path}: not a doorface gallery (no {SCHEMA} metadata)")
            keys = ["names", "embeddings", "crops", "sources"]
            if "negative_names" in data:
                keys += ["negative_names", "negative_embeddings", "negative_crops"]
            arrays = {key: data[key] for key in keys}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise GalleryError(f"{path}: corrupt gallery file ({type(exc).__name__})") from None
    for key, array in arrays.items():
        _check_kind(path, key, array)
    for key in _FLOATS:
        if key in arrays:
            arrays[key] = arrays[key].astype(np.float32)
    return meta, arrays


def _check_kind(path: Path, key: str, array: np.ndarray) -> None:
    """GalleryError unless ``array`` holds what ``key`` must: names and sources 1-D unicode
    text (bytes print as b'...' and are no JSON), embeddings floats, crops uint8."""
    if key in _TEXT:
        ok, want = array.dtype.kind == "U" and array.ndim == 1, "1-D text"
    elif key in _FLOATS:
        ok, want = array.dtype.kind == "f", "floats"
    else:
        ok, want = array.dtype == np.uint8, "uint8 pixels"
    if not ok:
        raise GalleryError(
            f"{path}: corrupt gallery ({key} must be {want}, not {array.dtype} {array.shape})"
        )


def _check_embeddings(path: Path, key: str, embeddings: np.ndarray) -> None:
    """GalleryError unless every row is a finite unit vector: a NaN, an inf, a zero or an
    inflated row would match everyone (or no one) and name a stranger."""
    if not np.all(np.isfinite(embeddings)):
        raise GalleryError(f"{path}: {key} hold NaN or infinite values (corrupt gallery?)")
    norms = np.linalg.norm(embeddings.astype(np.float64), axis=-1)
    if np.any(np.abs(norms - 1.0) > UNIT_TOLERANCE):
        raise GalleryError(f"{path}: {key} are not unit vectors (corrupt gallery?)")


def _target(path: Path) -> Path:
    """Where ``path`` leads: the file a symlink points to (even a dangling one), so that an
    atomic write replaces that file and leaves the link in place. GalleryError for a loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        raise GalleryError(f"{path}: cannot write the gallery (a symlink loop)") from None


def _cannot_write(path: Path, exc: OSError) -> GalleryError:
    """One line naming the file and why, e.g. the file that stands where a folder should be."""
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    why = f"{blocker} is not a folder" if blocker else (exc.strerror or str(exc))
    return GalleryError(f"{path}: cannot write the gallery ({why})")


def _signature(path: str | Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
