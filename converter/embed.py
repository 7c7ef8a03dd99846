"""Embeddings of the same aligned crops from the float Keras model and from a TFLite file.

The TFLite side goes through :class:`edge.embedder.Embedder`, i.e. exactly the edge's input
quantisation and output dequantisation, so agreement numbers describe what the Pi will compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.align import PREPROCESS_VERSION
from edge.detectors import Detector
from edge.embedder import Embedder, l2_normalize
from edge.errors import DoorfaceError
from edge.manifest import ModelManifest
from edge.scoring import Scoring


def crop_files(
    paths: Sequence[Path],
    size: int,
    detector: Detector,
    *,
    progress: bool = True,
    preprocessing: str = PREPROCESS_VERSION,
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crops (N, size, size, 3) for each file and a mask of files where a face was found
    (rows of files without a face are zeros)."""
    from tqdm import tqdm

    from edge.preprocess import face_crop_from_file

    crops = np.zeros((len(paths), size, size, 3), np.uint8)
    ok = np.zeros(len(paths), bool)
    for i, path in enumerate(tqdm(paths, desc="faces", unit="img", disable=not progress)):
        try:
            crops[i] = face_crop_from_file(path, detector, size, preprocessing).crop
            ok[i] = True
        except DoorfaceError:
            pass
    return crops, ok


def keras_embeddings(model: Any, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Float model embeddings (N, D), L2-normalised again in float64-safe numpy."""
    out = model.predict(np.asarray(crops, np.float32), batch_size=batch_size, verbose=0)
    return l2_normalize(np.asarray(out))


def tflite_embeddings(
    path: str | Path,
    crops: np.ndarray,
    *,
    manifest: ModelManifest | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Embeddings through the edge's Embedder (``manifest`` for a file not yet final)."""
    embedder = Embedder(path, threads=threads, manifest=manifest, verify_sha256=manifest is None)
    return embedder.embed(crops)


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Row-wise cosine between two embedding sets: mean, 1st percentile, min."""
    cos = np.sum(l2_normalize(a) * l2_normalize(b), axis=1)
    return {
        "faces": len(cos),
        "mean": round(float(cos.mean()), 6),
        "p1": round(float(np.percentile(cos, 1)), 6),
        "min": round(float(cos.min()), 6),
    }


def pair_scores(
    emb: np.ndarray, ia: np.ndarray, ib: np.ndarray, scoring: Scoring | None = None
) -> np.ndarray:
    """Score of rows ``ia[k]`` and ``ib[k]``: cosine, or the model's scale when given
    (cohort-normalised and rescaled as its manifest says: edge/scoring.py), each face's cohort
    offset computed once however many pairs it is in."""
    if scoring is None:
        return np.sum(emb[ia] * emb[ib], axis=1)
    offsets = scoring.offsets(emb)
    return scoring.rowwise(emb[ia], emb[ib], offsets[ia], offsets[ib])


def pair_index(
    pairs: list[tuple[Path, Path, bool]], files: list[Path]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ia, ib, same): for each (a, b, same) pair, the positions of a and b in ``files``."""
    index = {f: i for i, f in enumerate(files)}
    ia = np.array([index[a] for a, _, _ in pairs], np.int64)
    ib = np.array([index[b] for _, b, _ in pairs], np.int64)
    return ia, ib, np.array([same for _, _, same in pairs], bool)


def pair_file_faces(
    pairs_file: str | Path,
    images: str | Path,
    size: int,
    detector: Any,
    *,
    progress: bool = True,
    preprocessing: str = PREPROCESS_VERSION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Aligned crops of every image an LFW pair file names: (crops, ok, ia, ib, same)."""
    from trainer.evaluate import read_pairs

    pairs = read_pairs(pairs_file, images)
    files = sorted({p for a, b, _ in pairs for p in (a, b)})
    crops, ok = crop_files(files, size, detector, progress=progress, preprocessing=preprocessing)
    return (crops, ok, *pair_index(pairs, files))
