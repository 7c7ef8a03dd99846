"""The training loop: P x K batches, metric loss (+ teacher, + margin head), AdamW, checkpoints.

The Siamese twins are one encoder: every image of a P x K batch goes through the same model in
one call, and the losses compare every pair (or triplet) of its rows, so each comparison is a
pair of twin branches that share all weights by construction, and only that one encoder is
saved (the exportable embedding model of the Keras Siamese example). Koch's head and the
margin-softmax centres are training-only variables, never part of ``encoder.keras``.

A custom loop rather than ``model.fit``: the losses need the whole batch's labels, the teacher
targets ride along, and the schedule is driven by a time budget as well as a step count.
Progress is ``max(step / total_steps, elapsed / time_budget)``; the learning rate warms up
linearly then follows a cosine to 1% of its peak over that progress, so a time-boxed run still
anneals properly. Batches are sampled and augmented in a background thread (NumPy/OpenCV
release the GIL) while TensorFlow trains on the previous one.

After every epoch the encoder is run in INFERENCE mode on held-out identities (and optional
monitor pairs): that is what the Pi will see, and catches BatchNorm statistics drifting away
from the weights (the embedding collapse a training-mode metric would hide).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.detectors import TRAINING_DETECTOR, DetectorSettings, create_detector
from edge.manifest import write_bytes_atomic
from trainer.augment import AUGMENTS, augment_batch
from trainer.cache import DEFAULT_CACHE
from trainer.calibration import holdout_operating_point
from trainer.data import FaceSet, load_faces, pair_crops, split_by_identity
from trainer.errors import TrainingError
from trainer.evaluate import (
    one_shot_identification,
    read_pairs,
    row_cosines,
    sampled_pairs,
    verification_metrics,
)
from trainer.sampler import PKSampler

LOSSES = ("semihard", "batchhard", "staged", "contrastive", "koch")
HEADS = ("none", "cosface", "arcface")


@dataclass
class TrainConfig:
    roots: list[str]
    out: str = "runs/default"
    input_size: int = 64
    embedding_size: int = 128
    width: float = 1.0
    activation: str = "relu"
    loss: str = "semihard"
    margin: float = 0.2
    staged_switch: float = 0.6  # "staged": semi-hard until this progress, then batch-hard
    head: str = "none"
    head_weight: float = 1.0
    teacher: str = "none"
    teacher_weight: float = 1.0
    relational_weight: float = 0.0  # teacher's pairwise similarities (losses.relational_...)
    teacher_margin_max: float = 0.0  # > margin: semi-hard margins set by the teacher's distances
    teacher_minutes: float = 0.0  # 0: embed every face; else stop after this (rest untaught)
    p: int = 32
    k: int = 4
    singletons: int = 8
    steps_per_epoch: int = 200
    epochs: int = 1000
    time_budget_min: float = 0.0
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 5e-4
    val_fraction: float = 0.05
    val_max_images: int = 3000
    monitor_pairs: str = ""
    monitor_root: str = ""
    exclude_pairs: list[str] = field(default_factory=list)
    cache: str = str(DEFAULT_CACHE)
    detector: DetectorSettings = TRAINING_DETECTOR  # [detector] settings; whole photos
    seed: int = 0
    threads: int = 0
    augment: str = "basic"  # "none" or a recipe of trainer.augment.AUGMENTS
    resume: bool = False
    init_from: str = ""  # start from this encoder's weights (.keras, or an int8 .tflite)
    progress: bool = True


def set_threads(threads: int) -> None:
    """TensorFlow's intra-op threads (0: leave TensorFlow's choice, all cores); a no-op once
    TensorFlow has started running ops in this process."""
    import tensorflow as tf

    if threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        except RuntimeError:
            pass  # already initialised in this process (tests): keep what it has


class BackgroundBatches:
    """Makes batches on a background thread (augmentation in NumPy/OpenCV overlaps the
    training step); a subclass says how one batch is made (:meth:`make`). An error there
    reaches the trainer at its next :meth:`get` instead of leaving it waiting."""

    def __init__(self, seed: int, stream: int = 0) -> None:
        # stream: a resumed run's steps so far, so that it does not replay its first batches
        self.rng = np.random.default_rng([seed + 1, stream] if stream else seed + 1)
        self.q: queue.Queue = queue.Queue(maxsize=6)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def make(self) -> tuple:
        raise NotImplementedError

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                item = self.make()
            except Exception as exc:  # handed to the trainer's thread by get()
                item = exc
            while not self.stop.is_set():
                try:
                    self.q.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if isinstance(item, Exception):
                return

    def get(self):
        item = self.q.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.stop.set()


class _Batches(BackgroundBatches):
    """Augmented (x, labels, indices) batches of P x K sampled faces."""

    def __init__(self, faces: FaceSet, sampler: PKSampler, seed: int, augment: str) -> None:
        self.faces, self.sampler, self.augment = faces, sampler, augment
        super().__init__(seed)

    def make(self) -> tuple:
        idx = self.sampler.batch()
        crops = self.faces.crops[idx]
        x = (
            augment_batch(crops, self.rng, AUGMENTS[self.augment])
            if self.augment != "none"
            else crops.astype(np.float32)
        )
        return x, self.faces.labels[idx], idx


def embed(model, crops: np.ndarray, batch: int = 256) -> np.ndarray:
    """Inference-mode embeddings of uint8 crops."""
    out = [
        np.asarray(model(crops[i : i + batch].astype(np.float32), training=False))
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def warmup_cosine_lr(
    base: float, warmup_steps: int, step: int, progress: float, floor: float = 0.0
) -> float:
    """The learning rate at ``step``, ``progress`` (0..1) of the way through a run: linear
    warm-up over ``warmup_steps``, then cosine decay from ``base`` to ``floor * base``."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    cos = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return base * warm * cos


def lr_at(progress: float, step: int, cfg: TrainConfig) -> float:
    """trainer train's schedule: decay to 1% of ``cfg.lr``, never to zero."""
    return warmup_cosine_lr(cfg.lr, cfg.warmup_steps, step, progress, floor=0.01)


def train(cfg: TrainConfig, faces: FaceSet | None = None) -> dict:
    """Train, write ``encoder.keras``, ``training.json`` and plots into ``cfg.out``; return the
    training record. ``faces`` (already aligned crops) replaces loading ``cfg.roots``: tests
    and benchmarks use it to train on generated data.

    Four steps, each below: the data (split by identity, teacher targets, held-out pairs), the
    model and optimiser (fresh, ``--init-from`` or resumed), the epochs, then the held-out
    operating point and the outputs (nothing is written if the threshold cannot be fit)."""
    _check_settings(cfg)
    started = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    detector = create_detector(cfg.detector)
    data = _prepare_data(cfg, faces, detector)
    # TensorFlow only now: bad data fails in a second, not after a 10 s import
    run = _build_run(cfg, data, out / "checkpoint")
    _train_epochs(cfg, data, run, out / "checkpoint")
    return _finish(cfg, data, run, detector.record, out, started)


def _check_settings(cfg: TrainConfig) -> None:
    """Refuse combinations of options before any work (TrainingError naming the option)."""
    if cfg.augment != "none" and cfg.augment not in AUGMENTS:
        known = ", ".join(["none", *AUGMENTS])
        raise TrainingError(f"--augment: unknown {cfg.augment!r} (known: {known})")
    if cfg.loss not in LOSSES:
        raise TrainingError(f"--loss: unknown {cfg.loss!r} (known: {', '.join(LOSSES)})")
    if cfg.head not in HEADS:
        raise TrainingError(f"--head: unknown {cfg.head!r} (known: {', '.join(HEADS)})")
    if cfg.teacher_margin_max and (cfg.teacher == "none" or cfg.loss not in ("semihard", "staged")):
        raise TrainingError("--teacher-margin-max needs --teacher and --loss semihard or staged")
    if cfg.teacher_margin_max and cfg.teacher_margin_max <= cfg.margin:
        raise TrainingError(
            f"--teacher-margin-max {cfg.teacher_margin_max} must exceed --margin {cfg.margin}"
        )


@dataclass
class _Data:
    """What the training loop reads besides the model."""

    train_set: FaceSet
    sampler: PKSampler
    counts: dict  # faces and identities, all / train / validation, skipped and excluded
    teacher_targets: np.ndarray | None  # centred, one row per training face
    teacher_info: dict
    val_pairs: tuple | None  # held-out identities: (crops, labels, i, j, same)
    monitor: tuple | None  # --monitor-pairs: (crops, i, j, same)


def _training_faces(cfg: TrainConfig, detector, progress: bool) -> FaceSet:
    """The aligned crops of ``cfg.roots`` (cached), pairsDevTest people excluded as asked."""
    return load_faces(
        cfg.roots,
        cfg.input_size,
        detector=detector,
        cache_dir=cfg.cache,
        exclude_pairs=cfg.exclude_pairs,
        progress=progress,
        preprocessing=_preprocess_version(),
    )


def _prepare_data(cfg: TrainConfig, faces: FaceSet | None, detector) -> _Data:
    if faces is None:
        faces = _training_faces(cfg, detector, cfg.progress)
    if faces.crops.shape[1:] != (cfg.input_size, cfg.input_size, 3):
        raise TrainingError(f"crops are {faces.crops.shape[1:]}, --input-size is {cfg.input_size}")
    train_set, val_set = split_by_identity(faces, cfg.val_fraction, cfg.seed)
    if cfg.val_fraction > 0:
        _check_holdout(val_set, cfg)
    sampler = PKSampler(train_set.labels, cfg.p, cfg.k, singletons=cfg.singletons, seed=cfg.seed)
    counts = {
        "all": faces.counts(),
        "train": train_set.counts(),
        "validation": val_set.counts() if val_set else None,
        "skipped_images": dict(faces.skipped),
        "excluded_people": faces.excluded_people,
        "excluded_images": faces.excluded_images,
    }
    _log(cfg, f"data: {json.dumps(counts)}")
    targets, teacher_info = _teacher_targets(cfg, train_set)
    val_pairs = None
    if val_set is not None:  # inference-mode monitoring on identities never trained on
        v_crops, v_labels = validation_sample(val_set, cfg)
        val_pairs = (v_crops, v_labels, *sampled_pairs(v_labels, 1000, cfg.seed))
    monitor = None
    if cfg.monitor_pairs:
        pairs = read_pairs(cfg.monitor_pairs, cfg.monitor_root)
        crops = pair_crops(
            pairs,
            detector,
            cfg.input_size,
            progress=cfg.progress,
            preprocessing=_preprocess_version(),
        )
        monitor = crops[:4]
    return _Data(train_set, sampler, counts, targets, teacher_info, val_pairs, monitor)


def _teacher_targets(cfg: TrainConfig, train_set: FaceSet) -> tuple[np.ndarray | None, dict]:
    """The teacher's embeddings of the training faces, centred on their mean; and a record."""
    if cfg.teacher == "none":
        return None, {}
    from trainer.teacher import centre, teacher_embeddings

    t0 = time.time()
    raw = teacher_embeddings(
        train_set.paths,
        train_set.boxes,
        cfg.cache,
        cfg.teacher,
        progress=cfg.progress,
        budget_s=cfg.teacher_minutes * 60 or None,
    )
    targets, mean = centre(raw)
    info = {
        "name": cfg.teacher,
        "seconds": round(time.time() - t0, 1),
        "faces_with_target": int((np.linalg.norm(raw, axis=1) > 0).sum()),
        "faces": len(raw),
        "mean_norm": float(np.linalg.norm(mean)),
    }
    _log(cfg, f"teacher: {info}")
    return targets, info


@dataclass
class _Run:
    """The encoder being trained, its optimiser, the training-only variables beside it (the
    margin head's centres, Koch's weights: never part of ``encoder.keras``) and the state a
    checkpoint keeps."""

    model: Any
    optimizer: Any
    extra: list
    train_vars: list
    centres: Any = None
    koch: tuple | None = None  # (w, b)
    state: dict = field(
        default_factory=lambda: {"epoch": 0, "step": 0, "elapsed": 0.0, "history": []}
    )


#: trainer train's --resume may also go on longer than the run was first meant to (the
#: schedule then stretches: ``--epochs`` and ``--time-budget`` set how far it goes) and
#: monitor other pairs (they are only watched).
TRAIN_RESUME_LONGER = ("epochs", "time_budget_min", "monitor_pairs", "monitor_root")


def _build_run(cfg: TrainConfig, data: _Data, ckpt_dir: Path) -> _Run:
    """A fresh encoder (weights ``--init-from`` a run or model), or the checkpoint's when
    ``--resume`` finds one (its sampler position too)."""
    import keras

    from trainer.model import build_encoder

    set_threads(cfg.threads)
    keras.utils.set_random_seed(cfg.seed)
    model = build_encoder(cfg.input_size, cfg.embedding_size, cfg.width, cfg.activation)
    optimizer = keras.optimizers.AdamW(learning_rate=cfg.lr, weight_decay=cfg.weight_decay)
    extra: list = []
    centres = koch = None
    if cfg.head != "none":
        n_classes = len(data.train_set.names)
        centres = keras.Variable(
            keras.random.normal((n_classes, cfg.embedding_size), seed=cfg.seed), name="centres"
        )
        extra.append(centres)
    if cfg.loss == "koch":
        koch = (
            keras.Variable(-np.ones(cfg.embedding_size, np.float32) * 0.5, name="koch_w"),
            keras.Variable(np.float32(3.0), name="koch_b"),
        )
        extra += list(koch)
    run = _Run(model, optimizer, extra, model.trainable_variables + extra, centres, koch)
    optimizer.build(run.train_vars)
    resuming = cfg.resume and (ckpt_dir / "state.json").exists()
    if cfg.init_from and not resuming:
        _init_weights(model, cfg, data.train_set)
        _log(cfg, f"weights from {cfg.init_from}")
    options = resume_options(cfg, RESUME_FREE + TRAIN_RESUME_LONGER)
    if resuming:
        run.state = load_checkpoint(ckpt_dir, model, optimizer, extra)
        check_resume_options(ckpt_dir, run.state.get("options", {}), options)
        data.sampler.rng = np.random.default_rng([cfg.seed, run.state["step"]])
        _log(cfg, f"resumed at epoch {run.state['epoch']} step {run.state['step']}")
    elif cfg.resume:
        _log(cfg, f"--resume: no checkpoint in {ckpt_dir}, starting fresh")
    run.state["options"] = options
    return run


def _metric_loss(cfg: TrainConfig, run: _Run, kind: str, y, emb, t):
    """(loss, share of active triplets) of one batch for the loss ``kind``."""
    import tensorflow as tf

    from trainer import losses

    if kind == "semihard" and t is not None and cfg.teacher_margin_max:
        return losses.triplet_semihard_teacher_margins(
            y, emb, t, cfg.margin, cfg.teacher_margin_max, return_active=True
        )
    if kind == "semihard":
        return losses.triplet_semihard(y, emb, cfg.margin, return_active=True)
    if kind == "batchhard":
        return losses.triplet_batch_hard(y, emb, cfg.margin, return_active=True)
    if kind == "contrastive":
        return losses.contrastive(y, emb, 1.0), tf.constant(0.0)
    return losses.koch_bce(y, emb, *run.koch), tf.constant(0.0)


def _make_step(cfg: TrainConfig, run: _Run, kind: str, n_classes: int):
    """One compiled training step for the loss ``kind``: metric loss, plus distillation onto
    the teacher's targets and the margin head when set. Returns (total, metric, distil,
    active)."""
    import tensorflow as tf

    from trainer import losses

    @tf.function(reduce_retracing=True)
    def step(x, y, t):
        with tf.GradientTape() as tape:
            emb = run.model(x, training=True)
            main, active = _metric_loss(cfg, run, kind, y, emb, t)
            total = main
            distill = tf.constant(0.0)
            if t is not None:
                distill = cfg.teacher_weight * losses.cosine_distillation(emb, t)
                if cfg.relational_weight:
                    distill += cfg.relational_weight * losses.relational_distillation(emb, t)
                total = total + distill
            if run.centres is not None:
                total = total + cfg.head_weight * losses.margin_softmax(
                    tf.where(y < n_classes, y, -1), emb, run.centres, kind=cfg.head
                )
        grads = tape.gradient(total, run.train_vars)
        run.optimizer.apply_gradients(zip(grads, run.train_vars, strict=True))
        return total, main, distill, active

    return step


def _train_epochs(cfg: TrainConfig, data: _Data, run: _Run, ckpt_dir: Path) -> None:
    """Epochs until the step count or the time budget is spent; after each, the held-out
    monitor in inference mode, one log line and a checkpoint (``--resume`` goes on from it)."""
    steps: dict = {}  # one compiled step per loss kind ("staged" switches kind part-way)
    batches = _Batches(data.train_set, data.sampler, cfg.seed + run.state["step"], cfg.augment)
    clock = (run.state["elapsed"], time.time())  # time trained before this process; its start
    try:
        while (record := _train_epoch(cfg, data, run, steps, batches, clock)) is not None:
            record.update(_monitor(run.model, data.val_pairs, data.monitor))
            run.state["history"].append(record)
            _log(cfg, "epoch " + " ".join(f"{k}={_fmt(v)}" for k, v in record.items()))
            save_checkpoint(ckpt_dir, run.model, run.optimizer, run.extra, run.state)
    finally:
        batches.close()


def _train_epoch(cfg: TrainConfig, data: _Data, run: _Run, steps: dict, batches, clock):
    """Up to ``steps_per_epoch`` steps, fewer when the budget runs out; the epoch's record, or
    None when the budget was spent before its first step."""
    import tensorflow as tf
    from tqdm import tqdm

    state, (elapsed_before, resumed_at) = run.state, clock
    total_steps, budget_s = cfg.epochs * cfg.steps_per_epoch, cfg.time_budget_min * 60
    sums, images, done, kind = np.zeros(4), 0, 0, cfg.loss
    t_epoch = time.time()
    bar = tqdm(
        range(cfg.steps_per_epoch),
        desc=f"epoch {state['epoch'] + 1}",
        unit="step",
        disable=not cfg.progress,
        leave=False,
    )
    for _ in bar:
        elapsed = elapsed_before + time.time() - resumed_at
        progress = max(state["step"] / total_steps, elapsed / budget_s if budget_s else 0.0)
        if progress >= 1.0:
            break
        kind = cfg.loss
        if kind == "staged":
            kind = "semihard" if progress < cfg.staged_switch else "batchhard"
        if kind not in steps:
            steps[kind] = _make_step(cfg, run, kind, len(data.train_set.names))
        run.optimizer.learning_rate.assign(lr_at(progress, state["step"], cfg))
        x, y, idx = batches.get()
        t = tf.constant(data.teacher_targets[idx]) if data.teacher_targets is not None else None
        vals = np.array([float(v) for v in steps[kind](tf.constant(x), tf.constant(y), t)])
        if not np.isfinite(vals[0]):
            raise TrainingError(f"loss became {vals[0]} at step {state['step']}; lower --lr")
        sums += vals
        images += len(y)
        done += 1
        state["step"] += 1
        bar.set_postfix(loss=f"{vals[0]:.3f}", active=f"{vals[3]:.2f}")
    if done == 0:
        return None
    state["epoch"] += 1
    state["elapsed"] = elapsed_before + time.time() - resumed_at
    return {
        "epoch": state["epoch"],
        "step": state["step"],
        "minutes": round(state["elapsed"] / 60, 2),
        "lr": float(run.optimizer.learning_rate.numpy()),
        "loss": sums[0] / done,
        "metric_loss": sums[1] / done,
        "distill_loss": sums[2] / done,
        "active_triplets": sums[3] / done,
        "mining": kind,
        "images_per_s": images / max(1e-9, time.time() - t_epoch),
    }


def _final_metrics(cfg: TrainConfig, data: _Data, model) -> tuple[dict, float | None, Any, Any]:
    """(metrics, threshold, confidence, (scores, same) for the ROC plot): the held-out
    identities' operating point (threshold at FAR 1e-2, flip-fused, with its confidence)
    when there are some, else the monitor pairs' 10-fold threshold."""
    metrics: dict = {}
    threshold = confidence = scores_same = None
    if data.val_pairs is not None:
        v_crops, v_labels, vi, vj, vs = data.val_pairs
        emb = embed(model, v_crops)
        metrics["validation"] = verification_metrics(row_cosines(emb[vi], emb[vj]), vs)
        if len(np.unique(v_labels)) >= 10:
            metrics["validation"]["one_shot_10way"] = one_shot_identification(
                emb, v_labels, 10, 500, cfg.seed
            )
        point, scores_same = holdout_operating_point(
            flip_fused(model, v_crops, emb),
            v_labels,
            cfg.seed,
            fitted_on=_holdout_label(cfg, v_labels),
        )
        confidence = point.pop("confidence")
        metrics["holdout_identities"] = point
        threshold = point["threshold_at_far_1e-2"]
    if data.monitor is not None:
        crops, ia, ib, same = data.monitor
        emb = embed(model, crops)
        s = row_cosines(emb[ia], emb[ib])
        metrics["monitor_pairs"] = {"file": cfg.monitor_pairs, **verification_metrics(s, same)}
        if threshold is None:
            threshold = metrics["monitor_pairs"]["kfold_threshold"]
            scores_same = (s, same)
    return metrics, threshold, confidence, scores_same


def _finish(cfg: TrainConfig, data: _Data, run: _Run, detector, out: Path, started: float) -> dict:
    """The final metrics, then ``encoder.keras``, ``training.json`` and the plots."""
    from trainer.plots import plot_roc_hist, plot_training

    metrics, threshold, confidence, scores_same = _final_metrics(cfg, data, run.model)
    _check_threshold(threshold)
    run.model.save(out / "encoder.keras")
    source = None
    if data.val_pairs is not None:
        source = "held-out identities, flip-fused, FAR 1e-2"
    elif data.monitor is not None:
        source = "monitor pairs (10-fold mean)"
    record = {
        "settings": asdict(cfg),
        "model": {
            "params": int(run.model.count_params()),
            "input_size": cfg.input_size,
            "embedding_size": cfg.embedding_size,
            "width": cfg.width,
            "activation": cfg.activation,
        },
        "preprocessing": _preprocess_version(),
        "detector": asdict(detector),  # the converter copies it into model.json
        "data": data.counts,
        "teacher": data.teacher_info or None,
        "history": run.state["history"],
        "train_minutes": round(run.state["elapsed"] / 60, 2),
        "wall_minutes": round((time.time() - started) / 60, 2),
        "metrics": metrics,
        "threshold": threshold,
        "confidence": confidence,
        "threshold_source": source,
    }
    _write_record(out / "training.json", record)
    plot_training(run.state["history"], out / "training_curve.png")
    if scores_same is not None:
        plot_roc_hist(scores_same[0], scores_same[1], out, threshold)
    _log(cfg, f"wrote {out / 'encoder.keras'} threshold={threshold}")
    return record


#: Different pairs a held-out set needs before FAR 1e-2 can be met below "accept nothing".
MIN_HOLDOUT_DIFFERENT = 100


def _check_holdout(val_set: FaceSet | None, cfg: TrainConfig) -> None:
    """Refuse, before any training, a held-out split too small to fit the shipped threshold."""
    if val_set is None:
        raise TrainingError(
            f"--val-fraction {cfg.val_fraction:g}: too few identities with 2+ images to hold "
            "out 2 of them for the threshold (add people, raise it, or 0 for no held-out set)"
        )
    _, labels = validation_sample(val_set, cfg)
    counts = np.bincount(labels).astype(np.int64)
    different = (len(labels) ** 2 - int((counts**2).sum())) // 2
    if different < MIN_HOLDOUT_DIFFERENT:
        raise TrainingError(
            f"--val-fraction {cfg.val_fraction:g}: the held-out identities give {different} "
            f"different pairs, need {MIN_HOLDOUT_DIFFERENT} to fit a threshold at FAR 1e-2 "
            "(add people or raise it)"
        )


def _check_threshold(threshold: float | None) -> None:
    """A threshold must be a cosine (-1..1); inf means FAR 1e-2 was never reached."""
    if threshold is not None and not (
        isinstance(threshold, (int, float))
        and abs(threshold) <= 1.001  # float32 cosines pass 1 by ~1e-7
    ):
        raise TrainingError(
            f"fitted threshold {threshold} is not a cosine score: too few held-out pairs "
            "to fit one (add people or raise --val-fraction); nothing written"
        )


def _finite(o):
    """``o`` with every non-finite float (e.g. an unreachable FAR 1e-3 threshold) as None."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, (float, np.floating)) and not math.isfinite(o):
        return None
    return o


def _write_record(path: Path, record: dict) -> None:
    """training.json as strict JSON (no NaN/Infinity), written whole or not at all."""
    text = json.dumps(_finite(record), indent=2, default=_json_default, allow_nan=False)
    write_bytes_atomic(path, text.encode())


def _run_record(run: Path) -> tuple[dict, TrainConfig, DetectorSettings]:
    """training.json of a ``trainer train`` run, checked: (record, settings, detector)."""
    path = run / "training.json"
    try:
        record = json.loads(path.read_text())
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError:
        raise TrainingError(f"{path}: not valid JSON") from None
    settings = record.get("settings") if isinstance(record, dict) else None
    if not isinstance(settings, dict):
        raise TrainingError(
            f"{path}: no 'settings' object (not a 'trainer train' run; prune-dlib runs "
            "cannot be recalibrated)"
        )
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    kept = {k: v for k, v in settings.items() if k in fields}
    for key in ("roots", "val_fraction", "seed", "input_size"):
        if key not in kept:
            raise TrainingError(f"{path}: settings.{key} is missing")
    checks = {
        "roots": lambda v: isinstance(v, list) and all(isinstance(r, str) for r in v),
        "val_fraction": lambda v: _is_number(v) and 0 <= v < 1,
        "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "input_size": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 32,
        "val_max_images": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "exclude_pairs": lambda v: isinstance(v, list) and all(isinstance(r, str) for r in v),
        "cache": lambda v: isinstance(v, str),
    }
    for key, ok in checks.items():
        if key in kept and not ok(kept[key]):
            raise TrainingError(f"{path}: settings.{key} is invalid ({kept[key]!r})")
    detector = kept.get("detector", TRAINING_DETECTOR)
    try:
        if isinstance(detector, dict):  # as training.json stores it
            detector = DetectorSettings(**detector)
        if not isinstance(detector, DetectorSettings):
            raise TypeError
        cfg = TrainConfig(**kept)
    except (TypeError, ValueError):
        raise TrainingError(f"{path}: settings.detector is invalid") from None
    return record, cfg, detector


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validation_sample(val_set: FaceSet, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """At most ``val_max_images`` crops and labels of the held-out identities (seeded)."""
    rng = np.random.default_rng(cfg.seed + 7)
    keep = np.sort(rng.permutation(len(val_set.labels))[: cfg.val_max_images])
    return val_set.crops[keep], val_set.labels[keep]


def recalibrate(run: str | Path, faces: FaceSet | None = None, *, progress: bool = True) -> dict:
    """Recompute a finished run's held-out operating point with today's code: the same
    identities (its settings and seed), its saved ``encoder.keras``, flip-fused embeddings;
    rewrites ``threshold``, ``confidence`` and ``metrics.holdout_identities`` of its
    ``training.json`` and returns that record. For runs made before these existed."""
    import keras

    from trainer import model as _registers_l2  # noqa: F401  (L2Normalize for load_model)

    run = Path(run)
    record, cfg, detector = _run_record(run)
    if faces is None:  # as train() loads them; tests pass the faces they trained on
        faces = _training_faces(cfg, create_detector(detector), progress)
    _, val_set = split_by_identity(faces, cfg.val_fraction, cfg.seed)
    if val_set is None:
        raise TrainingError(f"{run}: the run held out no identities (val_fraction 0)")
    v_crops, v_labels = validation_sample(val_set, cfg)
    model = keras.models.load_model(run / "encoder.keras")
    point, _ = holdout_operating_point(
        flip_fused(model, v_crops), v_labels, cfg.seed, fitted_on=_holdout_label(cfg, v_labels)
    )
    record["confidence"] = point.pop("confidence")
    if not isinstance(record.get("metrics"), dict):
        record["metrics"] = {}
    record["metrics"]["holdout_identities"] = point
    record["threshold"] = point["threshold_at_far_1e-2"]
    record["threshold_source"] = "held-out identities, flip-fused, FAR 1e-2"
    _check_threshold(record["threshold"])
    _write_record(run / "training.json", record)
    return record


def flip_fused(model, crops: np.ndarray, plain: np.ndarray | None = None) -> np.ndarray:
    """Embeddings as the edge computes them by default (``recognition.flip``): the crop and
    its mirror image embedded, summed and re-normalised. ``plain``: the crops' own embeddings
    when the caller has them already."""
    plain = embed(model, crops) if plain is None else plain
    e = plain + embed(model, np.ascontiguousarray(crops[:, :, ::-1]))
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def _holdout_label(cfg: TrainConfig, labels: np.ndarray) -> str:
    people, faces = len(np.unique(labels)), len(labels)
    return f"held-out identities of trainer seed {cfg.seed} ({people} people, {faces} faces), flip-fused"


def _monitor(model, val_pairs, monitor) -> dict:
    out: dict = {}
    if val_pairs is not None:
        v_crops, _, vi, vj, vs = val_pairs
        emb = embed(model, v_crops)
        s = row_cosines(emb[vi], emb[vj])
        m = verification_metrics(s, vs)
        out.update(
            val_acc=m["kfold_accuracy"],
            val_auc=m["auc"],
            val_same=m["mean_same"],
            val_diff=m["mean_different"],
        )
    if monitor is not None:
        crops, ia, ib, same = monitor
        emb = embed(model, crops)
        m = verification_metrics(row_cosines(emb[ia], emb[ib]), same)
        out.update(pairs_acc=m["kfold_accuracy"], pairs_auc=m["auc"])
    return out


def _init_weights(model, cfg: TrainConfig, faces: FaceSet) -> None:
    """Copy a trained encoder's weights into ``model``: a run's ``encoder.keras``, or a shipped
    int8 ``.tflite`` rebuilt in float by :mod:`trainer.recover` (BatchNorm statistics measured
    on 512 of ``faces``). The optimizer and learning-rate schedule start fresh (a warm restart)."""
    from trainer.recover import encoder_from_tflite, trained_model

    def rebuild(tflite: Path):
        rng = np.random.default_rng(cfg.seed)
        pick = rng.choice(len(faces.crops), min(512, len(faces.crops)), replace=False)
        crops = faces.crops[np.sort(pick)]
        return encoder_from_tflite(
            tflite, crops, embedding_size=cfg.embedding_size, width=cfg.width
        )

    path = Path(cfg.init_from)
    source = trained_model(path, rebuild)
    try:
        model.set_weights(source.get_weights())
    except ValueError:
        raise TrainingError(
            f"--init-from {path}: a different architecture than --input-size {cfg.input_size} "
            f"--width {cfg.width} --embedding-size {cfg.embedding_size}"
        ) from None


#: Options a --resume may change in every trainer command: where files go, printing, threads.
RESUME_FREE = ("out", "cache", "resume", "progress", "threads")


def resume_options(cfg: Any, free: tuple[str, ...] = RESUME_FREE) -> dict:
    """The options of ``cfg`` (a config dataclass) a checkpoint records and a ``--resume``
    must repeat, as JSON stores them: all but ``free``."""
    chosen = {k: v for k, v in asdict(cfg).items() if k not in free}
    return json.loads(json.dumps(chosen, default=_json_default))


def check_resume_options(ckpt_dir: Path, made_with: dict, now: dict) -> None:
    """TrainingError, one line naming the first option, where the checkpoint in ``ckpt_dir``
    was made with other options than ``now`` (:func:`resume_options`): resuming would train a
    run that is neither the old one nor the new one."""
    for key, value in now.items():
        if made_with.get(key) != value:
            raise TrainingError(
                f"{ckpt_dir}: made with {key} = {made_with.get(key)!r}, now {value!r}; resume "
                "with the same options, or start afresh in another --out"
            )


def save_checkpoint(ckpt_dir: Path, model, optimizer, extra, state) -> None:
    """Weights, optimiser and ``extra`` variables and the JSON ``state`` of a run, for
    ``--resume``. Each file is written beside its place and moved in, ``state.json`` last: a
    run killed while saving leaves no half-written file (at worst weights one save newer than
    the state that counts their steps)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    model.save_weights(ckpt_dir / "model.tmp.weights.h5")
    os.replace(ckpt_dir / "model.tmp.weights.h5", ckpt_dir / "model.weights.h5")
    for name, variables in (("optimizer", optimizer.variables), ("extra", extra)):
        with open(ckpt_dir / f"{name}.tmp.npz", "wb") as f:
            np.savez(f, *[np.asarray(v) for v in variables])
        os.replace(ckpt_dir / f"{name}.tmp.npz", ckpt_dir / f"{name}.npz")
    tmp = ckpt_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state, default=_json_default))
    os.replace(tmp, ckpt_dir / "state.json")


def load_checkpoint(ckpt_dir: Path, model, optimizer, extra) -> dict:
    """Restore what :func:`save_checkpoint` wrote into these (built) objects; return the
    state. TrainingError, one line, for a missing, damaged or mismatched checkpoint."""
    try:
        model.load_weights(ckpt_dir / "model.weights.h5")
        with np.load(ckpt_dir / "optimizer.npz") as z:
            values = [z[f"arr_{i}"] for i in range(len(z.files))]
        if len(values) != len(optimizer.variables):
            raise ValueError("optimizer state does not match this model")
        for var, val in zip(optimizer.variables, values, strict=True):
            var.assign(val)
        with np.load(ckpt_dir / "extra.npz") as z:
            for i, var in enumerate(extra):
                var.assign(z[f"arr_{i}"])
        return json.loads((ckpt_dir / "state.json").read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise TrainingError(f"{ckpt_dir}: cannot resume ({str(exc).splitlines()[0]})") from None


def _preprocess_version() -> str:
    from edge.preprocess import PREPROCESS_VERSION

    return PREPROCESS_VERSION


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _log(cfg: TrainConfig, message: str) -> None:
    if cfg.progress:
        print(message, flush=True)
