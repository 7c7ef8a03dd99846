"""``converter quantize``: Keras encoder + real faces -> OUT.tflite + OUT.json, atomically.

Order of work: check the output folder is writable (before minutes of conversion), load and
check the model, collect calibration faces with the edge's preprocessing, convert, verify the
result by parsing the flatbuffer, measure on pairs (optional), then write both files. Both
files are first written completely as temporaries in the output folder and renamed at the very
end, so an error at any step leaves no half-written output (a crash between the two renames
could still leave a new .tflite beside an old .json; the edge then refuses the pair on sha256).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from converter.calibration import DEFAULT_SAMPLES, collect_faces
from converter.convert import MODES, convert, encoder_shapes, load_encoder
from converter.embed import (
    cosine_stats,
    keras_embeddings,
    pair_file_faces,
    pair_scores,
    tflite_embeddings,
)
from converter.errors import ConverterError
from converter.inspect import inspect_bytes
from converter.manifest import build_manifest, read_training_json, sha256_bytes
from edge.align import PREPROCESS_VERSION, preprocessing_in
from edge.confidence import ConfidenceModel
from edge.detectors import TRAINING_DETECTOR, Detector, DetectorSettings, create_detector
from edge.manifest import DetectorRecord, ModelManifest, manifest_path_for, sha256_file
from trainer.evaluate import best_threshold, verification_metrics


@dataclass
class QuantizeOptions:
    mode: str = "int8"
    samples: int = DEFAULT_SAMPLES
    threshold: float | None = None
    pairs: Path | None = None
    images: Path | None = None
    detector: DetectorSettings = TRAINING_DETECTOR  # calibration and pair faces
    seed: int = 0
    per_channel: bool = True
    progress: bool = True
    preprocessing: str = PREPROCESS_VERSION  # the crops' alignment (edge.align.TEMPLATES)
    extra: dict[str, Any] = field(default_factory=dict)


def check_output_path(out: Path) -> None:
    """Fail fast (before converting) on a bad output path."""
    if out.suffix != ".tflite":
        raise ConverterError(f"{out}: output must end in .tflite (the manifest goes beside it)")
    if out.is_dir():
        raise ConverterError(f"{out}: is a folder")
    if manifest_path_for(out).is_dir():
        raise ConverterError(f"{manifest_path_for(out)}: is a folder (the manifest goes there)")
    if not out.parent.is_dir():
        raise ConverterError(f"{out.parent}: output folder does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
    except OSError as exc:
        raise ConverterError(f"{out.parent}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def quantize(
    model_path: str | Path,
    calibration: str | Path | None,
    out: str | Path,
    options: QuantizeOptions | None = None,
    *,
    faces: np.ndarray | None = None,
) -> ModelManifest:
    """The whole ``converter quantize``. ``faces`` (aligned crops) replaces ``calibration``.

    Steps, each below: options and output checked, the encoder and its calibration faces
    loaded, converted and inspected, then measured against the float model (and scored on
    ``--pairs``) from a temporary file, and last the model and its manifest moved in place."""
    opts = options or QuantizeOptions()
    model_path, out = Path(model_path), Path(out)
    _check_options(opts)
    check_output_path(out)
    training = read_training_json(model_path) if model_path.suffix == ".keras" else None
    if training is not None:
        where = model_path.parent / "training.json"
        opts = replace(
            opts, preprocessing=preprocessing_in(training, str(where), opts.preprocessing)
        )
    model = load_encoder(model_path)
    size, dim = encoder_shapes(model, str(model_path))
    calibrate = faces is None and (opts.mode == "int8" or calibration is not None)
    detector = create_detector(opts.detector) if calibrate or opts.pairs is not None else None
    if calibrate:
        faces = _calibration_faces(calibration, size, detector, opts)
    if faces is not None and faces.shape[1:] != (size, size, 3):
        raise ConverterError(f"calibration faces have shape {faces.shape[1:]}, model takes {size}")
    tflite = convert(model, opts.mode, faces, per_channel=opts.per_channel)
    report = _checked_report(tflite, out, opts.mode, size, dim)

    tmp_tflite = _temp_in(out.parent, out.name)
    tmp_json = None
    try:
        _write_fsync(tmp_tflite, tflite)
        threshold, source = _given_threshold(opts, training, model_path)
        provisional = build_manifest(
            report=report,
            tflite=tflite,
            mode=opts.mode,
            threshold=threshold or 0.0,
            input_size=size,
            embedding_size=dim,
            preprocessing=opts.preprocessing,
        )
        metrics, calibrated = _measure(
            model, tmp_tflite, provisional, faces, detector, threshold, opts
        )
        if threshold is None and calibrated is not None:
            threshold, source = calibrated, f"calibrated on {opts.pairs}"
        if threshold is None:
            raise ConverterError(
                "no threshold: pass --threshold, --pairs/--images, or keep training.json "
                "beside the model"
            )
        manifest = build_manifest(
            report=report,
            tflite=tflite,
            mode=opts.mode,
            threshold=threshold,
            input_size=size,
            embedding_size=dim,
            source_sha256=sha256_file(model_path),
            metrics=metrics,
            extra={
                **_provenance(model_path, calibration, faces, detector, training, opts),
                "threshold_source": source,
                "file_size": len(tflite),
                "parameters": report.param_count,
                **opts.extra,
            },
            detector=detector_trained_with(model_path, training, detector),
            confidence=confidence_trained_with(model_path, training),
            preprocessing=opts.preprocessing,
        )
        tmp_json = _temp_in(out.parent, manifest_path_for(out).name)
        _publish(tflite, tmp_tflite, manifest, tmp_json, out)
        return manifest
    except OSError as exc:
        raise ConverterError(f"{out}: cannot write ({exc.strerror or exc})") from None
    finally:
        for tmp in (tmp_tflite, tmp_json):
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()


def _measure(
    model: Any,
    tflite_path: Path,
    provisional: ModelManifest,
    faces: np.ndarray | None,
    detector: Detector | None,
    threshold: float | None,
    opts: QuantizeOptions,
) -> tuple[dict[str, Any], float | None]:
    """(metrics, threshold fitted on ``--pairs`` or None): how far the converted model's
    embeddings of the calibration faces are from the float model's, and both models scored
    on ``--pairs`` when given."""
    metrics: dict[str, Any] = {}
    if faces is not None:
        metrics["cosine_agreement_calibration_faces"] = cosine_stats(
            keras_embeddings(model, faces),
            tflite_embeddings(tflite_path, faces, manifest=provisional),
        )
    if opts.pairs is None:
        return metrics, None
    pair_metrics, calibrated = evaluate_pairs(
        model,
        tflite_path,
        provisional,
        opts.pairs,
        opts.images,
        detector,
        provisional.input_height,
        threshold,
        progress=opts.progress,
        preprocessing=opts.preprocessing,
    )
    return metrics | pair_metrics, calibrated


def _provenance(
    model_path: Path,
    calibration: str | Path | None,
    faces: np.ndarray | None,
    detector: Detector | None,
    training: dict[str, Any] | None,
    opts: QuantizeOptions,
) -> dict[str, Any]:
    """Where the model came from and how it was quantised, for the manifest's extra fields."""
    return {
        "source_model": str(model_path.resolve()),
        "source_name": model_path.name,
        "calibration": {
            "folder": str(calibration) if calibration is not None else None,
            "faces": 0 if faces is None else len(faces),
            "seed": opts.seed,
            "detector": getattr(detector, "name", None),
        },
        "training_metrics": (training or {}).get("metrics", {}),
        "weight_quantization": (
            ("per-channel" if opts.per_channel else "per-tensor") if opts.mode == "int8" else None
        ),
    }


def _check_options(opts: QuantizeOptions) -> None:
    """Refuse option combinations before any work (ConverterError naming the option)."""
    if opts.mode not in MODES:
        raise ConverterError(f"--mode: must be one of {', '.join(MODES)}, got {opts.mode!r}")
    if opts.threshold is not None and not -1.0 <= opts.threshold <= 1.0:
        raise ConverterError(f"--threshold: must be a cosine in [-1, 1], got {opts.threshold}")
    if (opts.pairs is None) != (opts.images is None):
        raise ConverterError("--pairs and --images go together")
    if not opts.per_channel and opts.mode != "int8":
        raise ConverterError("--per-tensor: only for --mode int8")


def _calibration_faces(
    calibration: str | Path | None, size: int, detector: Detector, opts: QuantizeOptions
) -> np.ndarray:
    """Aligned faces of the calibration folder, the representative set of int8 conversion."""
    if calibration is None:
        raise ConverterError("--calibration: int8 needs a folder of face photos")
    faces, _ = collect_faces(
        calibration,
        size,
        opts.samples,
        detector=detector,
        seed=opts.seed,
        progress=opts.progress,
        preprocessing=opts.preprocessing,
    )
    return faces


def _checked_report(tflite: bytes, out: Path, mode: str, size: int, dim: int):
    """The converted model's report; ConverterError unless it is full-integer (int8 mode)
    and takes one ``size`` face to one ``dim`` embedding."""
    report = inspect_bytes(tflite, f"{out} (converted)")
    if mode == "int8":
        problems = report.int8_violations()
        if problems:
            raise ConverterError(f"conversion is not full-integer int8: {'; '.join(problems)}")
    if tuple(report.input.shape) != (1, size, size, 3) or tuple(report.output.shape) != (1, dim):
        raise ConverterError(
            f"converted model has input {report.input.shape} / output {report.output.shape}, "
            f"expected (1, {size}, {size}, 3) / (1, {dim})"
        )
    return report


def _given_threshold(
    opts: QuantizeOptions, training: dict[str, Any] | None, model_path: Path
) -> tuple[float | None, str]:
    """(threshold, its source) before any pairs are scored: ``--threshold``, else
    training.json's (held-out identities), which wins over one fitted on ``--pairs``: the
    pairs a model is scored on must never choose its threshold. None: fit it on the pairs."""
    if opts.threshold is not None or training is None or "threshold" not in training:
        return opts.threshold, "--threshold"
    try:
        return float(training["threshold"]), "training.json"
    except (TypeError, ValueError):
        raise ConverterError(
            f"{model_path.parent / 'training.json'}: threshold: must be a number"
        ) from None


def _publish(
    tflite: bytes, tmp_tflite: Path, manifest: ModelManifest, tmp_json: Path, out: Path
) -> None:
    """The written model checked against the converted bytes, then model and manifest moved
    to ``out`` and beside it, fsynced: a crash leaves the old pair or the new one."""
    _write_fsync(tmp_json, (json.dumps(manifest.to_json(), indent=2) + "\n").encode())
    if sha256_file(tmp_tflite) != sha256_bytes(tflite):
        raise ConverterError(f"{tmp_tflite}: written file differs from the converted bytes")
    if manifest_path_for(out).is_dir():  # it may have appeared while converting
        raise ConverterError(f"{manifest_path_for(out)}: is a folder (the manifest goes there)")
    os.replace(tmp_tflite, out)
    os.replace(tmp_json, manifest_path_for(out))
    _fsync_dir(out.parent)


def detector_trained_with(
    model_path: Path, training: dict[str, Any] | None, calibration: Detector | None
) -> DetectorRecord | None:
    """The detector the model learned on, for the manifest: ``training.json``'s record (the
    trainer writes one), else the calibration detector's, else None (unknown, e.g. faces passed
    in directly); the edge warns when it runs another."""
    if training is not None and "detector" in training:
        where = f"{model_path.parent / 'training.json'}: detector"
        return DetectorRecord.from_json(training["detector"], where)
    return None if calibration is None else calibration.record


def confidence_trained_with(
    model_path: Path, training: dict[str, Any] | None
) -> ConfidenceModel | None:
    """``training.json``'s ``confidence`` block (fitted on held-out identities by
    :func:`trainer.calibration.fit_confidence`), or None: then the manifest has none. Fitted on
    the float model's scores; int8 keeps cosines within about 0.01 of them, so it carries over."""
    if training is None or not training.get("confidence"):
        return None
    where = f"{model_path.parent / 'training.json'}: confidence"
    return ConfidenceModel.from_json(training["confidence"], where)


def evaluate_pairs(
    model: Any,
    tflite_path: Path,
    manifest: ModelManifest | None,
    pairs_file: Path,
    images: Path,
    detector: Any,
    size: int,
    threshold: float | None,
    *,
    progress: bool = True,
    preprocessing: str = PREPROCESS_VERSION,
) -> tuple[dict[str, Any], float]:
    """Verification metrics of float and TFLite on a pair file, and the TFLite's best threshold.

    Images without a detected face score -1 (decided "different"), which is what the edge would
    do with them. Returns (metrics, threshold calibrated on the TFLite scores).
    """
    crops, ok, ia, ib, same = pair_file_faces(
        pairs_file, images, size, detector, progress=progress, preprocessing=preprocessing
    )
    valid = ok[ia] & ok[ib]
    emb_f = keras_embeddings(model, crops)
    emb_q = tflite_embeddings(tflite_path, crops, manifest=manifest)
    s_f = np.where(valid, pair_scores(emb_f, ia, ib), -1.0)
    s_q = np.where(valid, pair_scores(emb_q, ia, ib), -1.0)
    calibrated = best_threshold(s_q, same)
    thr = calibrated if threshold is None else threshold
    return {
        "pairs_file": str(pairs_file),
        "pairs_without_face": int((~valid).sum()),
        "float32": verification_metrics(s_f, same, threshold=thr),
        "quantized": verification_metrics(s_q, same, threshold=thr),
        "cosine_agreement_pair_faces": cosine_stats(emb_f[ok], emb_q[ok]),
    }, calibrated


def _temp_in(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    return Path(tmp)


def _write_fsync(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o644)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
