"""The gallery: enrolled people, their aligned crops and embeddings, and the model that made them.

One ``.npz`` file, written atomically (temp file, fsync, rename) with mode 0600: these are
biometric data. The crops are kept so that ``rebuild`` can re-embed everyone with a new model
without asking people to stand in front of the camera again. A gallery records the sha256 of
the model that made its embeddings and refuses to be matched with any other.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import GalleryError
from edge.manifest import write_bytes_atomic

SCHEMA = "doorface.gallery/1"
FILE_MODE = 0o600


@dataclass(frozen=True)
class Person:
    name: str
    samples: int


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
    ) -> None:
        self.path = Path(path)
        self.model_id = model_id
        self.input_size = input_size
        self.embedding_size = embedding_size
        self.names = names if names is not None else np.zeros(0, dtype="<U1")
        self.embeddings = (
            embeddings if embeddings is not None else np.zeros((0, embedding_size), np.float32)
        )
        self.crops = (
            crops if crops is not None else np.zeros((0, input_size, input_size, 3), np.uint8)
        )
        self.sources = sources if sources is not None else np.zeros(0, dtype="<U1")
        self.created = created or _now()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | Path, model_id: str, input_size: int, embedding_size: int
    ) -> Gallery:
        return cls(path, model_id, input_size, embedding_size)

    @classmethod
    def load(cls, path: str | Path) -> Gallery:
        """Read a gallery; GalleryError (naming the file) if missing, corrupt or inconsistent."""
        path = Path(path)
        if not path.is_file():
            raise GalleryError(f"{path}: no such gallery (enrol someone first)")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"])) if "meta" in data else {}
                if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
                    raise GalleryError(f"{path}: not a doorface gallery (no {SCHEMA} metadata)")
                names, embeddings = data["names"], data["embeddings"].astype(np.float32)
                crops, sources = data["crops"], data["sources"]
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise GalleryError(f"{path}: corrupt gallery file ({type(exc).__name__})") from None
        try:
            gallery = cls(
                path,
                str(meta["model_id"]),
                int(meta["input_size"]),
                int(meta["embedding_size"]),
                names,
                embeddings,
                crops,
                sources,
                str(meta.get("created", "")),
            )
        except (KeyError, TypeError, ValueError):
            raise GalleryError(f"{path}: corrupt gallery metadata") from None
        gallery._check_shapes()
        return gallery

    @classmethod
    def open_or_create(
        cls, path: str | Path, model_id: str, input_size: int, embedding_size: int
    ) -> Gallery:
        """Load the gallery if the file exists (checking its model), else start an empty one."""
        if Path(path).exists():
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
        name = name.strip()
        if not name:
            raise GalleryError("a person's name must not be empty")
        crops = np.asarray(crops, np.uint8)
        embeddings = np.asarray(embeddings, np.float32)
        if crops.shape[1:] != (self.input_size, self.input_size, 3):
            raise GalleryError(f"crops of shape {crops.shape[1:]} for a {self.input_size}px model")
        if embeddings.shape != (len(crops), self.embedding_size):
            raise GalleryError(f"embeddings of shape {embeddings.shape} for {len(crops)} crops")
        self.names = np.concatenate([self.names, np.array([name] * len(crops))])
        self.embeddings = np.concatenate([self.embeddings, embeddings])
        self.crops = np.concatenate([self.crops, crops])
        self.sources = np.concatenate([self.sources, np.array(sources, dtype=str)])

    def remove(self, name: str) -> int:
        """Remove a person; returns how many samples went. GalleryError if unknown."""
        keep = self.names != name
        removed = int((~keep).sum())
        if not removed:
            raise GalleryError(f"{self.path}: no person named {name!r}")
        self._select(keep)
        return removed

    def rename(self, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise GalleryError("a person's name must not be empty")
        if old not in self.people:
            raise GalleryError(f"{self.path}: no person named {old!r}")
        if new in self.people:
            raise GalleryError(f"{self.path}: {new!r} is already enrolled (remove it first)")
        names = self.names.astype(object)
        names[names == old] = new
        self.names = names.astype(str)

    def rebuild(self, embedder) -> None:
        """Re-embed every stored crop with another model (resizing crops to its input)."""
        size = embedder.input_size
        crops = self.crops
        if len(crops) and crops.shape[1] != size:
            interp = cv2.INTER_AREA if crops.shape[1] > size else cv2.INTER_LINEAR
            crops = np.stack([cv2.resize(c, (size, size), interpolation=interp) for c in crops])
        else:
            crops = crops.reshape(-1, size, size, 3)
        self.embeddings = (
            embedder.embed(crops)
            if len(crops)
            else np.zeros((0, embedder.embedding_size), np.float32)
        )
        self.crops = crops
        self.model_id = embedder.model_id
        self.input_size = size
        self.embedding_size = embedder.embedding_size

    def save(self) -> None:
        """Atomic write, mode 0600: a crash leaves the old gallery or the new one, never half."""
        self._check_shapes()
        meta = {
            "schema": SCHEMA,
            "model_id": self.model_id,
            "input_size": self.input_size,
            "embedding_size": self.embedding_size,
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
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.path, buffer.getvalue(), mode=FILE_MODE)

    # -- internals ----------------------------------------------------------------------
    def _select(self, keep: np.ndarray) -> None:
        self.names, self.embeddings = self.names[keep], self.embeddings[keep]
        self.crops, self.sources = self.crops[keep], self.sources[keep]

    def _check_shapes(self) -> None:
        n = len(self.names)
        ok = (
            self.embeddings.shape == (n, self.embedding_size)
            and self.crops.shape == (n, self.input_size, self.input_size, 3)
            and self.sources.shape == (n,)
        )
        if not ok:
            raise GalleryError(f"{self.path}: corrupt gallery (arrays disagree in shape)")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
