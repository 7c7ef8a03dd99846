"""Embeddings from a ``.tflite`` encoder on the LiteRT interpreter (no TensorFlow; loaded by
:mod:`edge.litert`, which runs int8 models with XNNPACK far faster than the frozen
``tflite-runtime``, stopped at Python 3.11 and numpy 1)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.align import TEMPLATES
from edge.errors import ModelError
from edge.exposure import normalise_exposure
from edge.files import FileError, FileMissingError, check_regular
from edge.litert import interpreter_class, quiet_native_stderr
from edge.manifest import ModelManifest, load_manifest, manifest_path_for, sha256_file
from edge.scoring import Scoring, load_cohort

#: The edge's default for ``recognition.flip`` and ``edge --no-flip`` (enrolment, identify and
#: the daemon embed alike): flip fusion lowered false accepts at equal recall and raised
#: identification, for about 1 ms per face with dlib's encoder on one x86 core (docs/BENCHMARKS.md,
#: "Test-time fusion").
RECOGNITION_FLIP = True
#: The edge's default for ``recognition.exposure`` and ``edge --no-exposure``: under-exposed
#: faces brightened and noisy ones smoothed before embedding (edge/exposure.py; camera-gained
#: dark faces of held-out people at the threshold: TAR 0.792 -> 0.816, lit ones unchanged).
RECOGNITION_EXPOSURE = True
#: The edge's default for ``recognition.zoom`` and ``edge --zoom``: off, for its cost (each
#: face's views embedded twice more: 4 network runs per face with flip fusion instead of 2).
#: On: on the 26 replayed door clips no stranger named (shipped: 1 of 312), 3 more strangers
#: reported ``unknown`` once, members named as often and as soon (docs/BENCHMARKS.md, "A second
#: crop at test time, replayed").
RECOGNITION_ZOOM = False
#: Most LiteRT interpreter threads (``--threads``, ``recognition.threads``): 100000 crashed or
#: hung the interpreter, and no machine running doorface has more cores.
MAX_THREADS = 64
#: How far ``zoom`` zooms in: the crop's centre (1 - ZOOM_IN of its side) enlarged back to it.
ZOOM_IN = 0.08

_DTYPES = {"int8": np.int8, "uint8": np.uint8, "float32": np.float32, "float16": np.float16}


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def mirrored(crops: np.ndarray) -> np.ndarray:
    """(N, H, W, C) crops flipped left-right (cv2.flip: a twentieth of numpy's strided copy)."""
    out = np.empty_like(crops)
    for i in range(len(crops)):
        cv2.flip(crops[i], 1, dst=out[i])
    return out


def zoomed_in(crops: np.ndarray, fraction: float = ZOOM_IN) -> np.ndarray:
    """(N, S, S, 3) crops zoomed in: each one's centre, ``fraction`` of the side cut off
    (half on each edge), enlarged back to S x S (bilinear)."""
    n, side = len(crops), crops.shape[1]
    cut = round(side * fraction / 2)
    out = np.empty_like(crops)
    for i in range(n):
        centre = np.ascontiguousarray(crops[i, cut : side - cut, cut : side - cut])
        out[i] = cv2.resize(centre, (side, side), interpolation=cv2.INTER_LINEAR)
    return out


class Embedder:
    """Loads a model and its manifest once; :meth:`embed` maps aligned RGB crops to unit vectors.

    Quantisation parameters are read from the model's own tensors (the manifest's copy is only
    checked against them), so int8, float16, dynamic-range and float32 files all work.

    ``flip=True`` (test-time flip fusion): each crop is embedded twice, as is and mirrored
    left-right, and the two unit vectors are averaged and re-normalised. Nearly twice the
    embedding time (about +1 ms per face with dlib's encoder on one x86 core) for fewer false
    accepts at equal recall and better identification (docs/BENCHMARKS.md, "Test-time
    fusion"). A gallery must be embedded the same way as the faces matched against it; the
    default here stays False so the trainer's and converter's checks see the model's own
    output.

    ``exposure=True``: under-exposed crops are brightened first (:mod:`edge.exposure`), as a
    face-priority auto-exposure would, and noisy ones smoothed; well-lit, clean crops pass
    unchanged. False by default for the
    same reason as ``flip``.

    ``zoom=True``: each view is embedded a second time zoomed in by :data:`ZOOM_IN` (the
    crop's centre enlarged), and all views averaged: with ``flip``, four network runs per face.
    Measured with dlib's encoder (docs/BENCHMARKS.md, "A second crop at test time, replayed"):
    fewer false accepts at equal recall on held-out pairs, and no stranger named on 26 replayed
    door clips where flip fusion alone named one; twice flip fusion's time.

    A face's views go through the network as one batch where the model takes one (dlib's
    encoder does: 0.2 ms of flip fusion's 2 ms saved on one x86 core, the same numbers); a
    model whose graph fixes its batch at 1 (the trainer's own architecture's reshape) runs them
    one by one.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        threads: int = 1,
        manifest: ModelManifest | None = None,
        verify_sha256: bool = True,
        flip: bool = False,
        exposure: bool = False,
        zoom: bool = False,
    ) -> None:
        path = Path(model_path)
        try:
            check_regular(path)
        except FileMissingError:
            raise ModelError(f"{path}: no such model file") from None
        except FileError as exc:
            raise ModelError(str(exc)) from None
        with open(path, "rb") as f:
            head = f.read(8)
        if len(head) < 8 or head[4:8] != b"TFL3":
            raise ModelError(f"{path}: not a TFLite model (no TFL3 identifier)")
        self.manifest = manifest or load_manifest(manifest_path_for(path))
        if self.manifest.preprocessing not in TEMPLATES:
            raise ModelError(
                f"{path}: made for preprocessing {self.manifest.preprocessing!r}, "
                f"this edge does {', '.join(map(repr, TEMPLATES))}"
            )
        if verify_sha256 and sha256_file(path) != self.manifest.tflite_sha256:
            raise ModelError(f"{path}: sha256 differs from its manifest (wrong or damaged file)")
        try:
            with quiet_native_stderr():
                self._interp = interpreter_class()(
                    model_path=str(path), num_threads=max(1, threads)
                )
                self._interp.allocate_tensors()
                # the XNNPACK delegate announces itself on first use: do that here, quietly
                self._interp.invoke()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: the TFLite runtime cannot load it ({first})") from None
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{path}: expected one input and one output tensor")
        self._in, self._out = inputs[0], outputs[0]
        m = self.manifest
        expected_in = (1, m.input_height, m.input_width, 3)
        if tuple(self._in["shape"]) != expected_in:
            raise ModelError(
                f"{path}: input shape {tuple(self._in['shape'])}, manifest says {expected_in}"
            )
        if tuple(self._out["shape"]) != (1, m.embedding_size):
            raise ModelError(
                f"{path}: output shape {tuple(self._out['shape'])}, manifest says (1, {m.embedding_size})"
            )
        self._in_scale, self._in_zero = self._in["quantization"]
        self._out_scale, self._out_zero = self._out["quantization"]
        self.path = path
        self.threads = threads
        self._flip = flip
        self.exposure = exposure
        self._zoom = zoom
        self.scoring = self._scoring()
        self._batch = self._take_batch((2 if flip else 1) * (2 if zoom else 1))

    def _take_batch(self, views: int) -> int:
        """Resizes the input to ``views`` crops where the model allows it (all of a face's views
        in one invoke); returns the batch it runs with, ``views`` or 1."""
        if views == 1:
            return 1
        shape = list(self._in["shape"])
        try:
            with quiet_native_stderr():
                self._interp.resize_tensor_input(self._in["index"], [views, *shape[1:]])
                self._interp.allocate_tensors()
            return views
        except (ValueError, RuntimeError):
            with quiet_native_stderr():
                self._interp.resize_tensor_input(self._in["index"], shape)
                self._interp.allocate_tensors()
            return 1

    def _scoring(self) -> Scoring:
        """The manifest's score scale, with its cohort loaded (and checked) from beside it."""
        m = self.manifest
        if m.cohort is None:
            return Scoring(m.threshold, m.confidence)
        cohort = load_cohort(m.cohort, self.path.parent, m.embedding_size)
        c = m.cohort
        return Scoring(m.threshold, m.confidence, cohort, c.top_k, c.reference, c.gain, c.shift)

    @property
    def flip(self) -> bool:
        """Mirrored crops embedded too (fixed at construction: the input's batch follows it)."""
        return self._flip

    @property
    def zoom(self) -> bool:
        """Zoomed-in crops embedded too (fixed at construction, as ``flip``)."""
        return self._zoom

    @property
    def input_size(self) -> int:
        """Side of the square aligned crop this model takes."""
        return self.manifest.input_height

    @property
    def preprocessing(self) -> str:
        """The alignment its crops need (a key of :data:`edge.align.TEMPLATES`)."""
        return self.manifest.preprocessing

    @property
    def embedding_size(self) -> int:
        return self.manifest.embedding_size

    @property
    def model_id(self) -> str:
        return self.manifest.tflite_sha256

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) or (H, W, 3) RGB uint8 crops -> (N, D) float32 L2-normalised; with
        ``flip``, the re-normalised mean of the crops' and their mirror images' embeddings."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(
                f"expected crops of shape (N, {self.input_size}, {self.input_size}, 3), got {crops.shape}"
            )
        if self.exposure:
            crops = normalise_exposure(crops)
        if self.manifest.channel_order == "BGR":
            crops = crops[..., ::-1]
        views = [crops, mirrored(crops)] if self.flip else [crops]
        if self.zoom:
            views += [zoomed_in(v) for v in views]
        embeddings = self._embed_views(self._quantize_input(np.stack(views, axis=1)))
        if len(views) == 1:
            return embeddings[:, 0]
        return l2_normalize(embeddings.sum(axis=1))

    def _embed_views(self, views: np.ndarray) -> np.ndarray:
        """(N, V, H, W, 3) crops in the input's type, V views of each face -> (N, V, D) unit
        vectors: one invoke per face where the interpreter takes a batch of V, else one per view."""
        n, v = views.shape[:2]
        step = self._batch
        out = np.empty((n, v, self.embedding_size), np.float32)
        for i in range(n):
            for j in range(0, v, step):
                self._interp.set_tensor(self._in["index"], views[i, j : j + step])
                self._interp.invoke()
                out[i, j : j + step] = self._dequantize_output(
                    self._interp.get_tensor(self._out["index"])
                )
        return l2_normalize(out)

    def _quantize_input(self, pixels: np.ndarray) -> np.ndarray:
        dtype = self._in["dtype"]
        if np.issubdtype(dtype, np.integer):
            if self._in_scale == 0:
                return pixels.astype(dtype)
            info = np.iinfo(dtype)
            if self._in_scale == 1 and pixels.dtype == np.uint8:
                # uint8 pixels at unit scale (every shipped model): exact in integers, and a
                # quarter of the float path's time
                q = pixels.astype(np.int16) + int(self._in_zero)
            else:
                q = np.round(pixels.astype(np.float32) / self._in_scale + self._in_zero)
            return np.clip(q, info.min, info.max).astype(dtype)
        return pixels.astype(dtype)

    def _dequantize_output(self, values: np.ndarray) -> np.ndarray:
        if np.issubdtype(values.dtype, np.integer) and self._out_scale != 0:
            return (values.astype(np.float32) - self._out_zero) * self._out_scale
        return values.astype(np.float32)
