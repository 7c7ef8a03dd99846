"""Training data: folder-per-identity roots -> cached aligned crops + labels, split by identity.

Faces come only from :func:`edge.preprocess` (via :mod:`trainer.cache`), so training crops are
cut exactly as the Pi cuts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.detectors import TRAINING_DETECTOR, Detector, create_detector
from trainer.cache import DEFAULT_CACHE, load_root
from trainer.errors import DataError, TrainingError
from trainer.evaluate import read_pairs


def pair_file_people(path: str | Path) -> set[str]:
    """Every person named in an LFW-style pairs file (View 1 or View 2 layout).

    Parsed by :func:`trainer.evaluate.read_pairs`, so a bad file fails here exactly as it
    fails ``trainer evaluate``."""
    people: set[str] = set()
    for a, b, _same in read_pairs(path, ""):
        people.update((a.parent.name, b.parent.name))
    return people


@dataclass
class FaceSet:
    """Aligned crops with integer labels; ``names[label]`` is ``root/person``."""

    crops: np.ndarray
    labels: np.ndarray
    names: list[str]
    paths: list[str]
    boxes: np.ndarray
    skipped: Counter = field(default_factory=Counter)
    excluded_people: int = 0
    excluded_images: int = 0

    def subset(self, mask: np.ndarray) -> FaceSet:
        idx = np.flatnonzero(mask)
        old = np.unique(self.labels[idx])
        remap = {int(o): i for i, o in enumerate(old)}
        return FaceSet(
            crops=self.crops[idx],
            labels=np.asarray([remap[int(v)] for v in self.labels[idx]], np.int64),
            names=[self.names[int(o)] for o in old],
            paths=[self.paths[i] for i in idx],
            boxes=self.boxes[idx],
        )

    def counts(self) -> dict[str, int]:
        per = np.bincount(self.labels, minlength=len(self.names)) if len(self.labels) else []
        return {
            "images": len(self.labels),
            "identities": len(self.names),
            "identities_2plus": int(np.sum(np.asarray(per) >= 2)),
        }


def load_faces(
    roots: list[str | Path],
    size: int,
    *,
    detector: Detector | None = None,
    cache_dir: str | Path = DEFAULT_CACHE,
    exclude_pairs: list[str | Path] = (),
    progress: bool = True,
    preprocessing: str,
) -> FaceSet:
    """Load every root through the face cache, leaving out people named in ``exclude_pairs``;
    crops aligned for ``preprocessing`` (a model's: ``Embedder.preprocessing``)."""
    if not roots:
        raise DataError("no data roots given")
    detector = detector or create_detector(TRAINING_DETECTOR)
    excluded = set()
    for p in exclude_pairs:
        excluded |= pair_file_people(p)
    crops, labels, names, paths, boxes = [], [], [], [], []
    skipped: Counter = Counter()
    ex_people: set[str] = set()
    ex_images = 0
    index: dict[str, int] = {}
    for root in roots:
        faces = load_root(
            root, detector, size, cache_dir, progress=progress, preprocessing=preprocessing
        )
        skipped += faces.skip_counts
        keep = []
        for i, person in enumerate(faces.identities):
            if person in excluded:
                ex_people.add(person)
                ex_images += 1
                continue
            key = f"{Path(root).name}/{person}"
            labels.append(index.setdefault(key, len(index)))
            keep.append(i)
        crops.append(faces.crops[keep])
        paths += [faces.paths[i] for i in keep]
        boxes.append(faces.boxes[keep])
    names = list(index)
    if not labels:
        raise DataError("no usable faces in " + ", ".join(str(r) for r in roots))
    return FaceSet(
        crops=np.concatenate(crops),
        labels=np.asarray(labels, np.int64),
        names=names,
        paths=paths,
        boxes=np.concatenate(boxes),
        skipped=skipped,
        excluded_people=len(ex_people),
        excluded_images=ex_images,
    )


def split_by_identity(
    faces: FaceSet, val_fraction: float, seed: int = 0
) -> tuple[FaceSet, FaceSet | None]:
    """Hold out whole identities (with 2+ images, so they can form same pairs) for validation."""
    if val_fraction <= 0:
        return faces, None
    per = np.bincount(faces.labels, minlength=len(faces.names))
    multi = np.flatnonzero(per >= 2)
    n_val = round(len(multi) * val_fraction)
    if n_val < 2:
        return faces, None
    rng = np.random.default_rng(seed)
    val_ids = rng.choice(multi, n_val, replace=False)
    mask = np.isin(faces.labels, val_ids)
    train = faces.subset(~mask)
    if len(train.labels) == 0:
        raise TrainingError("validation split left no training data")
    return train, faces.subset(mask)


def pair_crops(
    pairs: list[tuple[Path, Path, bool]],
    detector: Detector,
    size: int,
    *,
    progress: bool = True,
    preprocessing: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Aligned crops for the images of a pair list.

    Returns (crops, index_a, index_b, same, skipped): pairs whose image is missing, unreadable
    or faceless are dropped and their images listed in ``skipped`` (path -> reason).
    """
    unique = sorted({str(p) for a, b, _ in pairs for p in (a, b)})
    crops, found, skipped = file_crops(
        [Path(u) for u in unique],
        detector,
        size,
        progress=progress,
        desc="pair faces",
        preprocessing=preprocessing,
    )
    where = {unique[i]: row for row, i in enumerate(found)}
    kept = [
        (where[str(a)], where[str(b)], s)
        for a, b, s in pairs
        if str(a) in where and str(b) in where
    ]
    if not kept:
        raise DataError(
            f"none of the {len(pairs)} pairs has two usable images (first problem: {next(iter(skipped.values()), '?')})"
        )
    ia, ib, same = (np.asarray(v) for v in zip(*kept, strict=True))
    return crops, ia.astype(np.int64), ib.astype(np.int64), same.astype(bool), skipped


def identification_set(
    pairs_file: str | Path, root: str | Path, per_person: int
) -> tuple[list[Path], np.ndarray]:
    """Images of every person a pairs file names (the people an evaluation may use), up to
    ``per_person`` each, sorted: the gallery/probe pool of one-shot identification."""
    files: list[Path] = []
    labels: list[str] = []
    for person in sorted(pair_file_people(pairs_file)):
        for path in sorted((Path(root) / person).glob("*.jpg"))[:per_person]:
            files.append(path)
            labels.append(person)
    return files, np.asarray(labels)


def file_crops(
    files: list[Path],
    detector: Detector,
    size: int,
    *,
    progress: bool = True,
    desc: str = "faces",
    preprocessing: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """(crops aligned for ``preprocessing``, indices of the files they came from, skipped
    path -> reason)."""
    from tqdm import tqdm

    from edge.errors import ImageError, NoFaceError
    from edge.preprocess import face_crop_from_file

    crops, kept, skipped = [], [], {}
    for i, path in enumerate(tqdm(files, desc=desc, unit="img", disable=not progress)):
        try:
            crops.append(face_crop_from_file(path, detector, size, preprocessing).crop)
            kept.append(i)
        except (ImageError, NoFaceError) as exc:
            skipped[str(path)] = str(exc)
    empty = np.zeros((0, size, size, 3), np.uint8)
    return (np.stack(crops) if crops else empty), np.asarray(kept, np.int64), skipped
