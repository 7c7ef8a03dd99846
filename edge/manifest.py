"""The model contract: ``model.tflite`` + ``model.json``. The edge reads everything from here.

Written by the converter (``converter quantize``), read by :class:`edge.embedder.Embedder`.
Validation errors name the key, e.g. ``model.json: input.height: must be a positive integer``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.align import PREPROCESS_VERSION
from edge.confidence import ConfidenceModel
from edge.errors import ModelError
from edge.scoring import CohortRecord

SCHEMA = "doorface.model/1"
QUANT_MODES = ("int8", "float16", "dynamic", "float32")


@dataclass(frozen=True)
class TensorQuant:
    """How a tensor maps to real values: real = (q - zero_point) * scale. float32: scale 0."""

    dtype: str
    scale: float = 0.0
    zero_point: int = 0


@dataclass(frozen=True)
class DetectorRecord:
    """Which face detector cut a model's training faces: backend name, model file name, sha256.

    Only these three identify the detector's output; ``detect_width`` and thresholds are left
    out on purpose, because training detects on whole photos while the Pi detects on a
    downscaled frame, and that difference is expected, not a mismatch.
    """

    backend: str
    model: str
    sha256: str

    def describe(self) -> str:
        return f"{self.backend} ({self.model})" if self.model else self.backend

    def differs_from(self, other: DetectorRecord) -> bool:
        """Another backend, or the same backend with another model file."""
        return self.backend != other.backend or self.sha256 != other.sha256

    @classmethod
    def from_json(cls, data: Any, where: str) -> DetectorRecord:
        r = _Reader(data, where)
        return cls(r.get("backend", str), r.get("model", str), r.get("sha256", str))


@dataclass
class ModelManifest:
    input_height: int
    input_width: int
    embedding_size: int
    quantization: str
    input_quant: TensorQuant
    output_quant: TensorQuant
    threshold: float
    tflite_sha256: str
    channel_order: str = "RGB"
    pixel_format: str = "uint8 0..255, rescaled inside the model"
    preprocessing: str = PREPROCESS_VERSION
    #: The detector the training faces were found with; None in manifests that predate it.
    detector: DetectorRecord | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    source_sha256: str = ""
    tools: dict[str, str] = field(default_factory=dict)
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: score -> P(same person) (edge/confidence.py); None: the model reports no confidence.
    confidence: ConfidenceModel | None = None
    #: cohort score normalisation (edge/scoring.py); when present, ``threshold`` and
    #: ``confidence`` are on the normalised scale. None: plain cosine.
    cohort: CohortRecord | None = None

    @property
    def model_id(self) -> str:
        """Short id of the model (first 12 hex digits of the TFLite file's sha256)."""
        return self.tflite_sha256[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "input": {
                "height": self.input_height,
                "width": self.input_width,
                "channels": 3,
                "channel_order": self.channel_order,
                "pixel_format": self.pixel_format,
                "preprocessing": self.preprocessing,
                **({"detector": asdict(self.detector)} if self.detector else {}),
            },
            "embedding_size": self.embedding_size,
            "quantization": {
                "mode": self.quantization,
                "input": asdict(self.input_quant),
                "output": asdict(self.output_quant),
            },
            "threshold": self.threshold,
            **({"confidence": self.confidence.to_json()} if self.confidence else {}),
            **({"cohort": self.cohort.to_json()} if self.cohort else {}),
            "metrics": self.metrics,
            "sha256": {"tflite": self.tflite_sha256, "source": self.source_sha256},
            "tools": self.tools,
            "created": self.created,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "model.json") -> ModelManifest:
        r = _Reader(data, where)
        if r.get("schema", str) != SCHEMA:
            raise ModelError(f"{where}: schema: expected {SCHEMA!r}, got {data.get('schema')!r}")
        channel_order = r.get("input.channel_order", str)
        if channel_order not in ("RGB", "BGR"):
            raise ModelError(
                f"{where}: input.channel_order: must be RGB or BGR, got {channel_order!r}"
            )
        mode = r.get("quantization.mode", str)
        if mode not in QUANT_MODES:
            raise ModelError(
                f"{where}: quantization.mode: must be one of {QUANT_MODES}, got {mode!r}"
            )
        threshold = r.get("threshold", float)
        if not -1.0 <= threshold <= 1.0:
            raise ModelError(f"{where}: threshold: must be a score in [-1, 1]")
        detector = r.get("input.detector", dict, None)
        confidence = r.get("confidence", dict, None)
        cohort = r.get("cohort", dict, None)
        return cls(
            input_height=r.positive("input.height"),
            input_width=r.positive("input.width"),
            embedding_size=r.positive("embedding_size"),
            quantization=mode,
            input_quant=r.quant("quantization.input"),
            output_quant=r.quant("quantization.output"),
            threshold=threshold,
            tflite_sha256=r.get("sha256.tflite", str),
            channel_order=channel_order,
            pixel_format=r.get("input.pixel_format", str),
            preprocessing=r.get("input.preprocessing", str),
            detector=(
                None
                if detector is None
                else DetectorRecord.from_json(detector, f"{where}: input.detector")
            ),
            metrics=r.get("metrics", dict, {}),
            source_sha256=r.get("sha256.source", str, ""),
            tools=r.get("tools", dict, {}),
            created=r.get("created", str, ""),
            extra=r.get("extra", dict, {}),
            confidence=(
                None
                if confidence is None
                else ConfidenceModel.from_json(confidence, f"{where}: confidence")
            ),
            cohort=None if cohort is None else CohortRecord.from_json(cohort, f"{where}: cohort"),
        )

    def write(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_json())


def manifest_path_for(model_path: str | Path) -> Path:
    """``model.tflite`` -> ``model.json``."""
    return Path(model_path).with_suffix(".json")


def load_manifest(path: str | Path) -> ModelManifest:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{path}: manifest not found (every model.tflite needs its model.json)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable JSON manifest ({exc})") from None
    return ModelManifest.from_json(data, str(path))


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: str | Path, data: Any, mode: int = 0o644) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, never half."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode(), mode)


def write_bytes_atomic(path: str | Path, payload: bytes, mode: int = 0o644) -> None:
    """Temp file in the same folder, fsync, rename over the target, fsync the folder."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _Reader:
    """Typed access to nested JSON keys with errors that name the key."""

    _MISSING = object()

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ModelError(f"{where}: must be a JSON object")
        self.data, self.where = data, where

    def get(self, key: str, kind: type, default: Any = _MISSING) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not self._MISSING:
                    return default
                raise ModelError(f"{self.where}: {key}: missing")
            node = node[part]
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            raise ModelError(
                f"{self.where}: {key}: must be {kind.__name__}, got {type(node).__name__}"
            )
        return node

    def positive(self, key: str) -> int:
        value = self.get(key, int)
        if value <= 0:
            raise ModelError(f"{self.where}: {key}: must be a positive integer, got {value}")
        return value

    def quant(self, key: str) -> TensorQuant:
        return TensorQuant(
            dtype=self.get(f"{key}.dtype", str),
            scale=self.get(f"{key}.scale", float),
            zero_point=self.get(f"{key}.zero_point", int),
        )
