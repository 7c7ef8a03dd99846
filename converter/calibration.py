"""Representative faces: real photos -> the edge's own detect+align -> (N, S, S, 3) RGB crops.

Every crop comes out of :func:`edge.preprocess.face_crop_from_file`, the same code the Pi runs,
so the int8 ranges are calibrated on exactly the pixels the model will see. The detector is
the trainer's (:data:`edge.detectors.TRAINING_DETECTOR`: the shipped YuNet on whole photos)
unless ``--detector*`` says otherwise. Sampling is
round-robin over identity folders (seeded), so a folder-per-person root such as LFW gives one
face from each of many people rather than 300 photos of George W. Bush.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converter.errors import ConverterError
from edge.align import PREPROCESS_VERSION
from edge.detectors import TRAINING_DETECTOR, Detector, create_detector
from edge.errors import DoorfaceError
from edge.image import IMAGE_SUFFIXES

DEFAULT_SAMPLES = 300


def images_by_identity(root: str | Path) -> dict[str, list[Path]]:
    """Images under ``root`` grouped by their parent folder (one group per identity)."""
    root = Path(root)
    if not root.is_dir():
        raise ConverterError(f"{root}: no such folder")
    groups: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            groups.setdefault(str(path.parent.relative_to(root)), []).append(path)
    if not groups:
        raise ConverterError(f"{root}: folder holds no image")
    return groups


def round_robin(groups: dict[str, list[Path]], seed: int = 0) -> Iterator[Path]:
    """Each group shuffled, groups in shuffled order; one image per group per round."""
    rng = random.Random(seed)
    order = sorted(groups)
    rng.shuffle(order)
    queues = {k: rng.sample(groups[k], len(groups[k])) for k in order}
    depth = 0
    while True:
        emitted = False
        for key in order:
            if depth < len(queues[key]):
                emitted = True
                yield queues[key][depth]
        if not emitted:
            return
        depth += 1


def collect_faces(
    root: str | Path,
    size: int,
    samples: int = DEFAULT_SAMPLES,
    *,
    detector: Detector | None = None,
    seed: int = 0,
    progress: bool = True,
    preprocessing: str = PREPROCESS_VERSION,
) -> tuple[np.ndarray, list[Path]]:
    """Up to ``samples`` aligned RGB uint8 crops (N, size, size, 3) and the files they came from.

    Unreadable images and images without a face are skipped. Raises ConverterError when no face
    at all is found (an empty or face-less folder).
    """
    if samples < 1:
        raise ConverterError(f"--samples: must be >= 1, got {samples}")
    from edge.preprocess import face_crop_from_file

    groups = images_by_identity(root)
    detector = detector or create_detector(TRAINING_DETECTOR)
    crops: list[np.ndarray] = []
    used: list[Path] = []
    tried = 0
    bar = _bar(samples, progress)
    try:
        for path in round_robin(groups, seed):
            if len(crops) >= samples:
                break
            tried += 1
            try:
                crops.append(face_crop_from_file(path, detector, size, preprocessing).crop)
            except DoorfaceError:
                continue
            used.append(path)
            bar.update(1)
    finally:
        bar.close()
    if not crops:
        raise ConverterError(f"{root}: no face found in {tried} image(s)")
    return np.stack(crops), used


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc="calibration faces", unit="face", disable=not enabled, leave=False
    )
