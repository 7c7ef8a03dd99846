"""Detect + align every training face once, through the edge's one preprocessing, and cache it.

One ``.npz`` per data root under the cache folder (default ``~/.cache/doorface``). The file
name carries the root's absolute path hash, the crop size, :data:`PREPROCESS_VERSION` and the
detector (:func:`detector_tag`: backend, model file and every setting), so changing any of
them builds a new cache instead of silently reusing stale crops. The crops themselves come
from :func:`edge.preprocess.face_crop_from_file`, as the edge's own.
Inside, every image is keyed by its relative path, mtime and byte size: edited or added images
are re-detected, unchanged ones are reused. Trade-off: one file per root is simple and loads in
one read (LFW at 64x64 is ~160 MB), but any change rewrites the whole file.

Images with no face, or that cannot be read, are counted and listed, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge.detectors import Detector
from edge.errors import DoorfaceError, ImageError, NoFaceError
from edge.image import IMAGE_SUFFIXES
from edge.preprocess import PREPROCESS_VERSION, face_crop_from_file
from trainer.errors import DataError

DEFAULT_CACHE = Path(os.environ.get("DOORFACE_CACHE", "~/.cache/doorface")).expanduser()


@dataclass
class RootFaces:
    """Aligned faces of one folder-per-identity root.

    ``paths`` are absolute; ``identities`` the top-level folder names; ``boxes`` (x, y, w, h)
    and ``landmarks`` (5x2) are in original-image pixels (the dlib teacher needs them).
    """

    root: Path
    paths: list[str]
    identities: list[str]
    crops: np.ndarray  # (N, S, S, 3) uint8 RGB
    boxes: np.ndarray  # (N, 4) float32
    landmarks: np.ndarray  # (N, 5, 2) float32
    skipped: dict[str, str] = field(default_factory=dict)  # path -> one-line reason

    @property
    def skip_counts(self) -> Counter:
        return Counter(
            "no face" if "no face" in why else "unreadable" for why in self.skipped.values()
        )


def list_identity_images(root: Path) -> list[tuple[str, str]]:
    """(relative path, identity) for every image under ``root/<identity>/`` (recursive).

    Images directly in the root have no identity and are ignored. Raises DataError when the
    root is missing or holds no identity folder with an image.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such data folder")
    items: list[tuple[str, str]] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(person.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                items.append((str(path.relative_to(root)), person.name))
    if not items:
        raise DataError(f"{root}: no images in identity folders (expected ROOT/Person/img.jpg)")
    return items


def detector_tag(detector: Detector) -> str:
    """Backend plus a digest of everything that changes its faces: the model file's sha256 and
    every setting (``detector.model`` by content, so a moved file keeps its cache)."""
    settings = {**asdict(detector.settings), "model": detector.record.sha256}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return f"{detector.name}-{digest}"


def _cache_file(
    cache_dir: Path,
    root: Path,
    size: int,
    detector: Detector,
    preprocessing: str = PREPROCESS_VERSION,
) -> Path:
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    tag = detector_tag(detector)
    return cache_dir / f"faces-{root.name}-{digest}-{size}px-{preprocessing}-{tag}.npz"


def _stat_key(root: Path, rel: str) -> str:
    st = (root / rel).stat()
    return f"{rel}|{st.st_mtime_ns}|{st.st_size}"


def load_root(
    root: str | Path,
    detector: Detector,
    size: int,
    cache_dir: str | Path = DEFAULT_CACHE,
    *,
    progress: bool = True,
    preprocessing: str = PREPROCESS_VERSION,
) -> RootFaces:
    """Aligned crops (for ``preprocessing``) of every image under ``root``, from the cache
    where still valid (an image's entry is keyed by its path, size and modification time)."""
    root = Path(root).expanduser().resolve()
    items = list_identity_images(root)
    cache_dir = Path(cache_dir).expanduser()
    cache_path = _cache_file(cache_dir, root, size, detector, preprocessing)
    old = _read_cache(cache_path)
    keys, entries = [], []
    for rel, _ in tqdm(items, desc=f"faces {root.name}", unit="img", disable=not progress):
        try:
            key = _stat_key(root, rel)
        except OSError:
            key = f"{rel}|missing"
        keys.append(key)
        entries.append(old.get(key) or _face_entry(root / rel, detector, size, preprocessing))
    crops, boxes, marks, reasons = zip(*entries, strict=True) if entries else ((), (), (), ())
    index = np.full(len(keys), -1, np.int64)
    good = [i for i, c in enumerate(crops) if c is not None]
    index[good] = np.arange(len(good))
    crop_arr = (
        np.stack([crops[i] for i in good]) if good else np.zeros((0, size, size, 3), np.uint8)
    )
    box_arr = np.asarray(boxes, np.float32).reshape(-1, 4)
    mark_arr = np.asarray(marks, np.float32).reshape(-1, 5, 2)
    if set(keys) != set(old):  # a new, changed or removed image
        _write_cache(
            cache_path,
            keys=np.asarray(keys),
            index=index,
            crops=crop_arr,
            boxes=box_arr,
            landmarks=mark_arr,
            reasons=np.asarray(reasons),
        )
    skipped = {str(root / items[i][0]): reasons[i] for i in range(len(items)) if index[i] < 0}
    return RootFaces(
        root=root,
        paths=[str(root / items[i][0]) for i in good],
        identities=[items[i][1] for i in good],
        crops=crop_arr,
        boxes=box_arr[good] if good else np.zeros((0, 4), np.float32),
        landmarks=mark_arr[good] if good else np.zeros((0, 5, 2), np.float32),
        skipped=skipped,
    )


def _read_cache(path: Path) -> dict[str, tuple]:
    """{key: (crop or None, box, landmarks, reason skipped)} of a root's cache file; empty
    when there is none, or it is corrupt or foreign (then it is rebuilt)."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            keys, index, crops = z["keys"], z["index"], z["crops"]
            boxes, marks, reasons = z["boxes"], z["landmarks"], z["reasons"]
    except (OSError, KeyError, ValueError):
        return {}
    return {
        str(key): (crops[index[i]] if index[i] >= 0 else None, boxes[i], marks[i], str(reasons[i]))
        for i, key in enumerate(keys)
    }


def _face_entry(path: Path, detector: Detector, size: int, preprocessing: str) -> tuple:
    """(crop, box, landmarks, "") of the image's face, or (None, zeros, zeros, why not)."""
    try:
        found = face_crop_from_file(path, detector, size, preprocessing)
    except (ImageError, NoFaceError) as exc:
        why = str(exc)
    except DoorfaceError as exc:  # pragma: no cover - any other edge failure
        why = f"{path}: unreadable ({exc})"
    else:
        box = np.asarray(found.face.box, np.float32)
        return found.crop, box, np.asarray(found.face.landmarks, np.float32).reshape(5, 2), ""
    return None, np.zeros(4, np.float32), np.zeros((5, 2), np.float32), why


def _write_cache(path: Path, **arrays: np.ndarray) -> None:
    """The root's cache file, replaced whole (a crash leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
