"""``converter compare``: does the TFLite file compute what the Keras model computes?

Cosine agreement of the two embeddings of the same real aligned faces (mean, 1st percentile,
min), agreement of same/different decisions at the manifest threshold, and with a pair file the
verification accuracy of both. Without a pair file decisions are compared over all pairs of the
sampled faces (mostly different people, so it mostly tests the "different" side).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter.calibration import collect_faces
from converter.convert import encoder_shapes, load_encoder
from converter.embed import cosine_stats, keras_embeddings, pair_file_faces, pair_scores
from converter.errors import CheckFailed, ConverterError
from edge.detectors import TRAINING_DETECTOR, DetectorSettings, create_detector
from edge.embedder import Embedder
from trainer.evaluate import verification_metrics


@dataclass
class Tolerances:
    mean: float = 0.99
    p1: float = 0.95
    decision_agreement: float = 0.97
    accuracy_drop: float = 0.01  # allowed (float - tflite) accuracy at the threshold


def compare(
    keras_path: str | Path,
    tflite_path: str | Path,
    images: str | Path,
    *,
    pairs: str | Path | None = None,
    max_images: int = 500,
    detector_settings: DetectorSettings = TRAINING_DETECTOR,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure agreement; returns a JSON-able dict (see module docstring)."""
    model = load_encoder(keras_path)
    size, dim = encoder_shapes(model, str(keras_path))
    embedder = Embedder(tflite_path)  # the edge's loader: manifest + sha256 checks included
    if embedder.input_size != size or embedder.embedding_size != dim:
        raise ConverterError(
            f"{tflite_path}: takes {embedder.input_size}px -> {embedder.embedding_size}-d, "
            f"{keras_path} takes {size}px -> {dim}-d: not the same model"
        )
    detector = create_detector(detector_settings)
    threshold = embedder.scoring.threshold
    result: dict[str, Any] = {
        "keras": str(keras_path),
        "tflite": str(tflite_path),
        "quantization": embedder.manifest.quantization,
        "threshold": threshold,
    }
    if pairs is not None:
        crops, ok, ia, ib, same = pair_file_faces(pairs, images, size, detector, progress=progress)
        valid = ok[ia] & ok[ib]
        if not ok.any():
            raise ConverterError(f"{images}: no face found in the pair images")
    else:
        crops, _ = collect_faces(
            images, size, max_images, detector=detector, seed=seed, progress=progress
        )
        ok = np.ones(len(crops), bool)
        ia, ib = np.triu_indices(len(crops), k=1)
        same, valid = None, np.ones(len(ia), bool)
    emb_f = keras_embeddings(model, crops)
    emb_q = embedder.embed(crops)
    result["cosine"] = cosine_stats(emb_f[ok], emb_q[ok])
    s_f = np.where(valid, pair_scores(emb_f, ia, ib, embedder.scoring), -1.0)
    s_q = np.where(valid, pair_scores(emb_q, ia, ib, embedder.scoring), -1.0)
    result["decision_agreement"] = round(
        float(np.mean((s_f >= threshold) == (s_q >= threshold))), 6
    )
    result["pairs_compared"] = len(ia)
    if same is not None:
        result["pairs_without_face"] = int((~valid).sum())
        result["float32"] = verification_metrics(s_f, same, threshold=threshold)
        result["quantized"] = verification_metrics(s_q, same, threshold=threshold)
    return result


def check_tolerances(result: dict[str, Any], tol: Tolerances) -> list[str]:
    """Human-readable failures (empty: within tolerance)."""
    fails = []
    cos = result["cosine"]
    if cos["mean"] < tol.mean:
        fails.append(f"cosine mean {cos['mean']:.4f} < {tol.mean}")
    if cos["p1"] < tol.p1:
        fails.append(f"cosine 1st percentile {cos['p1']:.4f} < {tol.p1}")
    if result["decision_agreement"] < tol.decision_agreement:
        fails.append(
            f"decision agreement {result['decision_agreement']:.4f} < {tol.decision_agreement}"
        )
    if "float32" in result:
        drop = (
            result["float32"]["accuracy_at_threshold"]
            - result["quantized"]["accuracy_at_threshold"]
        )
        if drop > tol.accuracy_drop:
            fails.append(f"accuracy drop {drop:.4f} > {tol.accuracy_drop}")
    return fails


def enforce(result: dict[str, Any], tol: Tolerances) -> None:
    fails = check_tolerances(result, tol)
    if fails:
        raise CheckFailed("compare: outside tolerance: " + "; ".join(fails))
