"""``trainer evaluate``: run a .keras or .tflite encoder over an LFW pairs file and report.

The maths is :mod:`trainer.evaluate` (NumPy only); this module loads models and images.
A ``.tflite`` goes through :class:`edge.embedder.Embedder` (it needs the model's manifest), so
the numbers are those of the runtime the Pi uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.align import preprocessing_in
from edge.detectors import TRAINING_DETECTOR, DetectorSettings, create_detector
from edge.errors import ModelError
from trainer.data import file_crops, identification_set, pair_crops
from trainer.evaluate import (
    best_threshold,
    one_shot_identification,
    read_pairs,
    row_cosines,
    verification_metrics,
)


def load_embed_fn(
    model_path: str | Path,
) -> tuple[Callable[[np.ndarray], np.ndarray], int, str]:
    """(embed(crops uint8) -> (N, D) unit vectors, input size, the crops' preprocessing) for a
    .keras (its training.json may name a preprocessing) or .tflite file."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    if path.suffix == ".tflite":
        from edge.embedder import Embedder

        emb = Embedder(path)
        return emb.embed, emb.input_size, emb.preprocessing
    if path.suffix != ".keras":
        raise ModelError(f"{path}: not a model this command knows (expected .keras or .tflite)")
    import keras

    import trainer.model  # noqa: F401  (registers L2Normalize)
    from trainer.train import embed

    try:
        model = keras.models.load_model(path)
    except Exception as exc:  # keras raises many kinds for a bad file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: cannot load as a Keras model ({first})") from None
    shape = model.input_shape
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
        raise ModelError(f"{path}: not a face encoder (input shape {shape})")
    return (lambda crops: embed(model, crops)), int(shape[1]), _preprocessing_beside(path)


def _preprocessing_beside(model: Path) -> str:
    """The preprocessing training.json beside a .keras model names, doorface's own without one."""
    import json

    training = model.parent / "training.json"
    try:
        record = json.loads(training.read_text()) if training.is_file() else {}
    except (OSError, ValueError):
        record = {}  # a damaged record does not stop an evaluation; the crops are doorface's
    return preprocessing_in(record if isinstance(record, dict) else {}, str(training))


def _scores(embed_fn, pairs_file, images, detector, size, how, progress):
    pairs = read_pairs(pairs_file, images)
    crops, ia, ib, same, skipped = pair_crops(
        pairs, detector, size, progress=progress, preprocessing=how
    )
    emb = embed_fn(crops)
    return row_cosines(emb[ia], emb[ib]), same, len(pairs), skipped


def evaluate_model(
    model: str | Path,
    images: str | Path,
    pairs: str | Path,
    *,
    threshold_pairs: str | Path | None = None,
    plots: str | Path | None = None,
    detector_settings: DetectorSettings = TRAINING_DETECTOR,
    n_way: int = 100,
    trials: int = 1000,
    per_person: int = 10,
    progress: bool = True,
) -> dict:
    """Verification numbers on ``pairs`` (the threshold from ``threshold_pairs`` or 10-fold),
    and ``n_way`` one-shot identification among the people the pairs file names (up to
    ``per_person`` photos each; ``n_way=0`` skips it)."""
    embed_fn, size, how = load_embed_fn(model)
    detector = create_detector(detector_settings)
    scores, same, n_pairs, skipped = _scores(embed_fn, pairs, images, detector, size, how, progress)
    threshold = None
    source = "10-fold cross-validation on the test pairs"
    if threshold_pairs:
        t_scores, t_same, _, _ = _scores(
            embed_fn, threshold_pairs, images, detector, size, how, progress
        )
        threshold = best_threshold(t_scores, t_same)
        source = f"best accuracy on {threshold_pairs}"
    metrics = verification_metrics(scores, same, threshold=threshold)
    if threshold is None:
        metrics["threshold"] = metrics["kfold_threshold"]
    result = {
        "model": str(model),
        "pairs_file": str(pairs),
        "pairs_in_file": n_pairs,
        "pairs_skipped": n_pairs - len(scores),
        "images_skipped": len(skipped),
        "skipped": dict(list(skipped.items())[:20]),
        "threshold_source": source,
        **metrics,
    }
    if n_way:
        result["one_shot"] = _one_shot(
            embed_fn, pairs, images, detector, size, how, n_way, trials, per_person, progress
        )
    if plots:
        from trainer.plots import plot_roc_hist

        plot_roc_hist(scores, same, plots, metrics["threshold"])
    if progress:
        print(format_table(result))
    return result


def _one_shot(embed_fn, pairs, images, detector, size, how, n_way, trials, per_person, progress):
    files, labels = identification_set(pairs, images, per_person)
    crops, kept, skipped = file_crops(
        files, detector, size, progress=progress, desc="identification faces", preprocessing=how
    )
    labels = labels[kept]
    out = {
        "n_way": n_way,
        "trials": trials,
        "people": len(np.unique(labels)),
        "images": len(labels),
        "images_skipped": len(skipped),
    }
    try:
        out["accuracy"] = one_shot_identification(embed_fn(crops), labels, n_way, trials)
    except ValueError as exc:  # too few people in the file: reported, not fatal
        out["accuracy"] = None
        out["not_run"] = str(exc)
    return out


def format_table(r: dict) -> str:
    rows = [
        (
            "pairs scored",
            f"{r['pairs']} ({r['pairs_skipped']} skipped, {r['images_skipped']} images without a face)",
        ),
        ("10-fold accuracy", f"{r['kfold_accuracy']:.4f} +- {r['kfold_std']:.4f}"),
    ]
    if "accuracy_at_threshold" in r:
        rows.append(("accuracy at threshold", f"{r['accuracy_at_threshold']:.4f}"))
    rows += [
        ("threshold", f"{r['threshold']:.4f} ({r['threshold_source']})"),
        ("ROC AUC", f"{r['auc']:.4f}"),
        ("EER", f"{r['eer']:.4f}"),
        ("TAR @ FAR 1e-2", f"{r['tar_at_far_1e-2']:.4f}"),
        ("TAR @ FAR 1e-3", f"{r['tar_at_far_1e-3']:.4f}"),
        ("mean cosine same / diff", f"{r['mean_same']:.3f} / {r['mean_different']:.3f}"),
    ]
    if "one_shot" in r:
        o = r["one_shot"]
        value = (
            f"{o['accuracy']:.4f} ({o['trials']} trials; {o['people']} people, {o['images']} images)"
            if o["accuracy"] is not None
            else f"not run: {o['not_run']}"
        )
        rows.append((f"one-shot {o['n_way']}-way identification", value))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
