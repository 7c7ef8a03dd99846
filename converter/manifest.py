"""Build the :class:`edge.manifest.ModelManifest` for a converted file.

Quantisation parameters are read back from the converted flatbuffer (not from converter
settings). Tool versions come from installed distributions, so a manifest says which
TensorFlow/Keras/LiteRT produced it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from converter.errors import ConverterError
from converter.inspect import ModelReport, TensorInfo
from edge.align import PREPROCESS_VERSION
from edge.confidence import ConfidenceModel
from edge.manifest import DetectorRecord, ModelManifest, TensorQuant

_TOOLS = {
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "keras": ("keras",),
    "ai-edge-litert": ("ai-edge-litert",),
    "doorface": ("doorface",),
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python"),
}


def tool_versions() -> dict[str, str]:
    out = {}
    for label, dists in _TOOLS.items():
        for dist in dists:
            try:
                out[label] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            out[label] = "unknown"
    return out


def tensor_quant(t: TensorInfo) -> TensorQuant:
    dtype = t.dtype.lower()
    return TensorQuant(dtype=dtype, scale=float(t.scale), zero_point=int(t.zero_point))


def read_training_json(model_path: Path) -> dict[str, Any] | None:
    """``training.json`` beside the model, or None. A corrupt one is an error, not ignored."""
    path = model_path.parent / "training.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConverterError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConverterError(f"{path}: must be a JSON object")
    return data


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(
    *,
    report: ModelReport,
    tflite: bytes,
    mode: str,
    threshold: float,
    input_size: int,
    embedding_size: int,
    source_sha256: str = "",
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    detector: DetectorRecord | None = None,
    confidence: ConfidenceModel | None = None,
    preprocessing: str = PREPROCESS_VERSION,
) -> ModelManifest:
    """Manifest for these exact bytes; validated by round-tripping through ``from_json``."""
    manifest = ModelManifest(
        input_height=input_size,
        input_width=input_size,
        embedding_size=embedding_size,
        quantization=mode,
        input_quant=tensor_quant(report.input),
        output_quant=tensor_quant(report.output),
        threshold=float(threshold),
        tflite_sha256=sha256_bytes(tflite),
        channel_order="RGB",
        pixel_format="uint8 0..255, rescaled inside the model",
        preprocessing=preprocessing,
        detector=detector,
        metrics=metrics or {},
        source_sha256=source_sha256,
        tools=tool_versions(),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        extra=extra or {},
        confidence=confidence,
    )
    # The same validation the edge applies; a contract violation fails here, before writing.
    ModelManifest.from_json(json.loads(json.dumps(manifest.to_json())), "manifest")
    return manifest
