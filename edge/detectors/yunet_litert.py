"""YuNet on LiteRT: one BGR image in, the rows OpenCV's ``FaceDetectorYN.detect`` gives out.

The network is opencv_zoo's ONNX converted to a float32 TFLite file by ``converter
import-yunet`` (:mod:`converter.yunet`); this module pads the image as OpenCV does (bottom and
right, to multiples of 32), runs it, and decodes the output as OpenCV does: per cell, score
``sqrt(cls * obj)``, box centre ``(cell + offset) * stride``, size ``exp(.) * stride``, five
landmarks ``(cell + offset) * stride``, then non-maximum suppression on the integer boxes.
On one x86 core a 320x240 frame took about half of OpenCV's time (XNNPACK against OpenCV's own
kernels; docs/BENCHMARKS.md, "Face detection on LiteRT"); the faces agree to within float
rounding (``tests/edge/test_detectors.py`` holds the shipped file to OpenCV's output).

A converted file carries a sidecar JSON (:func:`sidecar_path`) naming the ONNX it came from and
its sha256: that source identifies the detector in model manifests, so a model trained on
faces OpenCV found with the ONNX matches the converted file that finds the same faces.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edge.errors import DetectorError
from edge.litert import interpreter_class, quiet_native_stderr

STRIDES = (8, 16, 32)
#: The sidecar's keys for the source ONNX's file name and sha256.
SOURCE_KEYS = ("source", "source_sha256")
_COLUMNS = 16  # cls, obj, bbox (4), kps (10)


def sidecar_path(tflite: Path) -> Path:
    return tflite.with_suffix(".json")


def source_of(tflite: Path) -> tuple[str, str] | None:
    """(file name, sha256) of the ONNX ``tflite`` was converted from, or None without a
    readable sidecar."""
    try:
        record = json.loads(sidecar_path(tflite).read_text())
        name, sha = (record[k] for k in SOURCE_KEYS)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (name, sha) if isinstance(name, str) and isinstance(sha, str) else None


class YuNetNet:
    """The converted YuNet at any input size (the interpreter is resized when it changes)."""

    def __init__(
        self,
        path: Path,
        *,
        score_threshold: float,
        nms_threshold: float,
        top_k: int,
        threads: int = 1,
    ) -> None:
        with open(path, "rb") as f:
            head = f.read(8)
        if head[4:8] != b"TFL3":
            hint = " (convert it: converter import-yunet)" if path.suffix == ".onnx" else ""
            raise DetectorError(f"detector.model: {path}: not a TFLite file{hint}")
        try:
            with quiet_native_stderr():
                self._interp = interpreter_class()(model_path=str(path), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise DetectorError(f"detector.model: {path}: cannot be loaded ({exc})") from None
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if (
            len(inputs) != 1
            or len(outputs) != 1
            or len(inputs[0]["shape"]) != 4
            or outputs[0]["shape"][-1] != _COLUMNS
        ):
            raise DetectorError(f"detector.model: {path}: not a YuNet made by import-yunet")
        self._in, self._out = inputs[0]["index"], outputs[0]["index"]
        self._padded = (0, 0)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """(N, 15) float32 rows: x, y, w, h, five landmarks (x, y), score."""
        h, w = image_bgr.shape[:2]
        pad_h, pad_w = -(-h // 32) * 32, -(-w // 32) * 32
        if self._padded != (pad_h, pad_w):
            with quiet_native_stderr():
                self._interp.resize_tensor_input(self._in, [1, pad_h, pad_w, 3])
                self._interp.allocate_tensors()
            self._padded = (pad_h, pad_w)
        # written straight into the interpreter's input (a view it must not outlive the call)
        blob = self._interp.tensor(self._in)()
        blob[0, :h, :w] = image_bgr
        blob[0, h:] = 0  # OpenCV pads bottom and right with black
        blob[0, :h, w:] = 0
        del blob
        self._interp.invoke()
        faces = decode(self._interp.get_tensor(self._out)[0], pad_h, pad_w, self.score_threshold)
        if len(faces) < 2:
            return faces
        boxes = np.trunc(faces[:, :4]).astype(int).tolist()  # OpenCV suppresses on Rect2i
        keep = cv2.dnn.NMSBoxes(
            boxes, faces[:, 14].tolist(), self.score_threshold, self.nms_threshold, top_k=self.top_k
        )
        return faces[np.asarray(keep, int).reshape(-1)]


def decode(out: np.ndarray, pad_h: int, pad_w: int, threshold: float) -> np.ndarray:
    """The (N, 15) faces of the network's (cells, 16) output scoring at least ``threshold``."""
    rows, start = [], 0
    for s in STRIDES:
        cols = pad_w // s
        cells = out[start : start + (pad_h // s) * cols]
        start += len(cells)
        score = np.sqrt(np.clip(cells[:, 0], 0, 1) * np.clip(cells[:, 1], 0, 1))
        keep = np.flatnonzero(score >= np.float32(threshold))
        if not keep.size:
            continue
        p, stride = cells[keep], np.float32(s)
        r = (keep // cols).astype(np.float32)[:, None]
        c = (keep % cols).astype(np.float32)[:, None]
        size = np.exp(p[:, 4:6]) * stride
        face = np.empty((len(keep), 15), np.float32)
        face[:, 0:2] = (np.hstack([c, r]) + p[:, 2:4]) * stride - size / 2
        face[:, 2:4] = size
        face[:, 4:14:2] = (p[:, 6:16:2] + c) * stride
        face[:, 5:14:2] = (p[:, 7:16:2] + r) * stride
        face[:, 14] = score[keep]
        rows.append(face)
    return np.concatenate(rows) if rows else np.zeros((0, 15), np.float32)
