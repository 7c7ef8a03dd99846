"""A smaller dlib ResNet: dlib's network pruned by channel, then distilled back onto dlib.

``trainer prune-dlib`` makes a candidate fast encoder for machines where dlib's full network
(272 M multiply-adds, 5.5 MiB int8) is too slow: it keeps the channels of dlib's network that
carry the most signal on real faces (:func:`select_channels`), starts from dlib's own weights
for them, and trains the result to give dlib's float embedding of the same face
(:func:`distil`). The defaults keep 0.76 M of dlib's 5.65 M parameters and make the stem one
7x7/4 convolution: 0.82 MiB and 0.6 ms per face int8 on one core of a 2026 AMD EPYC.
Measured (docs/MODEL.md): after 65 minutes LFW 0.931 (int8), one-shot 0.746, not ahead of
the 64 px student at the door; with dlib's targets for moved crops and blends of two faces
(``--moved-targets --mix-share 0.3``) in one 105-minute run, LFW 0.959 and one-shot 0.857:
shipped as ``doorface-small`` since 2026-12-07 (scripts/make_small_model.sh). What limits it:
16 k training faces (the student fits them faster than it generalises).

- Targets: dlib's float embeddings of every training crop and of its mirror image, computed
  once and cached beside the face cache (about 2 min for 16 k faces on 2 cores). The student
  sees the crop mirrored or not, and often degraded as a door camera does (trainer.augment:
  darkness, side light, small faces, blur, JPEG, grey) while its target stays dlib's embedding
  of the clean crop: it learns to see through what the door does to a face.
- Loss: 1 - cosine to the target, both *centred* (dlib's mean embedding over the training
  faces subtracted), plus the squared difference of the batch's pairwise centred-cosine
  matrices (relational distillation: the geometry between faces, not only each point). dlib's
  embeddings lie in a narrow cone (different people at cosine 0.88 on average here): on the raw
  vectors a student at cosine 0.955 to dlib had learnt the cone and little of what tells
  people apart (LFW 0.907 after 20 minutes, measured); centring weighs the part that does.
- Data: the trainer's face cache at dlib's crop (150 px, ``dlib-chip-1``), the people of
  ``--exclude-pairs`` left out and the same identities held out as ``trainer train --seed S
  --val-fraction F`` holds out, so ``converter operating-point`` fits the threshold on people
  the model never saw. Progress is the mean cosine to dlib on held-out faces and their TAR at
  FAR 1e-3.
- ``--trainable-stages N`` trains only the stem and the first N stages (:func:`freeze_after`),
  for adapting dlib's own network to the door while its deeper layers stay dlib's. Measured
  with N = 2 (docs/MODEL.md, "only dlib's early layers fine-tuned"): members named sooner on the
  door replays, three look-alike strangers named; not shipped.
- ``--moved-targets``: most crops are moved (rotated, scaled, shifted) and dlib's target is
  embedded anew for each moved crop in the batch thread (the shipped int8 dlib on LiteRT), so
  the student meets inputs no cached target covers, each with its right answer. Measured side
  by side for 15 minutes, two seeds (docs/MODEL.md, "dlib's target on moved crops"): LFW
  0.857 vs 0.841 and 0.871 vs 0.844, held-out cosine to dlib +0.012 and -0.011; a lead on the
  pairs for the long run, not a result.
- ``--mix-share S`` (with ``--moved-targets``): that share of each batch's crops becomes a
  blend of two faces, its target dlib's embedding of the blend (function matching, Beyer et
  al. 2022: a student copies its teacher better on inputs between the training images, each
  with the teacher's own answer, when the data are few). Measured once, in the long run's two
  stages (20 + 45 min, docs/MODEL.md, "Blends of two faces as inputs too"): LFW 0.947 int8,
  one-shot 0.818, door 56/72 against 0.936, 0.760, 53/72 without blends, but with 1.7x the
  steps on a faster machine; the held-out cosine per step was level, so not separated.
- ``--bank-weight W`` (:func:`neighbourhood_kl`): each face's cosines to dlib's embeddings of
  every training face, as a softmax at ``--bank-temperature`` (0.05), made to match dlib's
  (CompRess, Abbasi Koohpayegani et al. 2020: similarity distributions over a memory bank
  rather than each point alone). The point loss weighs every face's error alike; this term
  weighs a face's nearest neighbours, where look-alikes land too close. Progress reports the
  held-out TAR at FAR 1e-3 (over every pair of held-out faces) beside the cosine: the strict
  tail is what the student lacks (0.45 for ``doorface-small`` before, dlib 0.85). Measured
  (docs/MODEL.md, "The neighbourhood term"): 90 minutes at W = 0.2 from the shipped file gave
  held-out 0.53, LFW TAR at 1e-3 0.718 (0.648) and 17-34 more door visits named at equal
  thresholds; 95 minutes more at W = 0.3 ("A stronger neighbourhood term") named 557 of 624
  replayed visits with no wrong name published, and 95 more at W = 0.5 ("The neighbourhood
  term stronger still") 564 with no wrong-name decision at all: ``doorface-small`` since the
  night of 2026-12-08.

- Checkpoints: at each sixth of the time budget (with the held-out cosine) the weights,
  optimiser state and progress go to ``OUT/checkpoint``; ``--resume`` goes on from there with
  the rest of the same budget and schedule (its options must be the run's, checked), its batches
  drawn afresh. A session that ends mid-run loses at most a sixth of the budget. Extending a
  finished run is ``--init-from`` (a warm restart), not ``--resume``: its ``encoder.keras``, or
  the shipped int8 file when the run is gone (:func:`trainer.recover.dlib_pruned_from_tflite`;
  80 minutes more from the shipped ``doorface-small``: docs/MODEL.md, not shipped).

Trade-off: the student can only be as good as dlib (it copies dlib's embedding), and dlib's
mistakes are its own; its accuracy is measured, not assumed (docs/MODEL.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from converter.dlib_resnet import (
    CHIP_SIZE,
    LICENCE,
    STAGES,
    DlibWeights,
    Pruning,
    build_model,
    packaged_weights,
    read_weights,
)
from edge.align import DLIB_CHIP
from trainer.augment import AugmentConfig, augment_one, move
from trainer.data import FaceSet, load_faces, split_by_identity
from trainer.errors import DataError, TrainingError
from trainer.train import (
    BackgroundBatches,
    check_resume_options,
    embed,
    load_checkpoint,
    resume_options,
    save_checkpoint,
    warmup_cosine_lr,
)

#: What the student's input goes through (its target never does): milder geometry than the
#: trainer's recipes (the target is the un-moved crop) and the door's conditions. Mirroring
#: is drawn separately, since the target must be mirrored with it.
DOOR_DEGRADATIONS = AugmentConfig(
    flip=0.0,
    rotate_deg=5.0,
    scale=0.04,
    shift=0.03,
    geometry_p=0.5,
    small_p=0.12,
    photometric_p=0.6,
    side_light_p=0.12,
    dark_p=0.12,
    blur_p=0.1,
    noise_p=0.1,
    grey_p=0.1,
    jpeg_p=0.1,
)
DEGRADED_SHARE = 0.7  # of the student's inputs; the rest are the clean crop
#: ``--moved-targets``: the moves (rotation, scale, shift) a crop gets before dlib embeds it
#: anew, twice DOOR_DEGRADATIONS' since the target now moves with the crop; then only the
#: door's photometric degradations touch the student's input.
MOVES = AugmentConfig(rotate_deg=10.0, scale=0.08, shift=0.06)
MOVED_SHARE = 0.7  # of the crops moved (their target embedded anew)
DOOR_PHOTOMETRIC = replace(DOOR_DEGRADATIONS, geometry_p=0.0)


@dataclass
class DistilConfig:
    roots: list[str]
    out: str = "runs/pruned"
    #: channels kept per stage (dlib: 32, 64, 128, 256, 256) and per block middle of each
    stream: tuple[int, ...] = (24, 48, 96, 128, 128)
    middle: tuple[int, ...] = (16, 24, 48, 48, 48)
    stem_stride: int = 4
    time_budget_min: float = 60.0
    batch: int = 48
    lr: float = 5e-4
    warmup_steps: int = 200
    relational_weight: float = 1.0
    val_fraction: float = 0.05
    seed: int = 0
    exclude_pairs: list[str] = field(default_factory=list)
    cache: str = ""
    select_faces: int = 768
    init_from: str = ""  # continue from this encoder.keras or int8 .tflite (channels chosen)
    #: train only the stem and this many first stages (0: every layer); the rest keeps dlib's
    #: weights, so what tells people apart stays dlib's and only the early filters adapt
    trainable_stages: int = 0
    #: move (rotate, scale, shift) most crops and compute dlib's target on the moved crop in
    #: the batch thread (the shipped int8 dlib on LiteRT, ~2 ms per face): inputs no cached
    #: target covers, each with its own right answer
    moved_targets: bool = False
    #: share of each batch's crops replaced by a blend of two faces of the batch, with dlib's
    #: target embedded anew for the blend (function matching: the student learns dlib's
    #: function between faces too, not only on the 16 k it has)
    mix_share: float = 0.0
    #: weight of the neighbourhood term (:func:`neighbourhood_kl`; 0: off): the student's
    #: similarities to dlib's embeddings of every training face, as a distribution sharpened
    #: by ``bank_temperature``, made to match dlib's own (CompRess, Abbasi Koohpayegani et al.
    #: 2020): the faces nearest each face weigh most, where look-alikes are told apart
    bank_weight: float = 0.0
    bank_temperature: float = 0.05
    #: go on from ``out/checkpoint`` (written at each held-out check) where there is one
    resume: bool = False
    progress: bool = True


def teacher_targets(model: Any, crops: np.ndarray, path: Path | None, log=print) -> np.ndarray:
    """(2, N, 128): dlib's float embeddings of the crops and of their mirror images, from
    ``path`` when it holds them for as many crops."""
    if path is not None and path.is_file():
        cached = np.load(path)
        if cached.shape == (2, len(crops), 128):
            return cached
    out = np.zeros((2, len(crops), 128), np.float32)
    started = time.monotonic()
    for b in range(0, len(crops), 2560):
        log(f"dlib targets {b}/{len(crops)} faces, {time.monotonic() - started:.0f} s")
        out[0, b : b + 2560] = embed(model, crops[b : b + 2560])
        out[1, b : b + 2560] = embed(model, crops[b : b + 2560, :, ::-1])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


def check_widths(stream: tuple[int, ...], middle: tuple[int, ...]) -> None:
    """DataError (one line) unless there is one width per stage, each within dlib's."""
    if len(stream) != len(STAGES) or len(middle) != len(STAGES):
        raise DataError(f"widths: {len(STAGES)} stages, got {len(stream)} and {len(middle)}")
    for kept, (full, _) in zip((*stream, *middle), (*STAGES, *STAGES), strict=True):
        if not 1 <= kept <= full:
            raise DataError(f"widths: each must be 1..{full} (dlib's), got {kept}")


def select_channels(
    weights: DlibWeights,
    crops: np.ndarray,
    stream: tuple[int, ...],
    middle: tuple[int, ...],
    stem_stride: int = 2,
) -> Pruning:
    """The channels to keep, by their signal on ``crops`` (uint8, 150 px dlib chips): a
    stage's stream by the mean square of its blocks' outputs summed over the stage (those
    channels carry the stage's features), a block's middle by its mean square times the
    squared weights that read it (a channel that is large but barely read adds nothing)."""
    check_widths(stream, middle)
    model = build_model(weights, taps=True)
    energy: list[np.ndarray] | None = None
    for b in range(0, len(crops), 64):
        taps = model(crops[b : b + 64].astype(np.float32), training=False)[1:]
        batch = [np.square(np.asarray(t)).mean(axis=(0, 1, 2)) for t in taps]
        energy = batch if energy is None else [e + f for e, f in zip(energy, batch, strict=True)]
    assert energy is not None
    kept_stream, kept_middle = [], []
    tap, conv = 0, 1  # energy[tap] is a block's middle, energy[tap + 1] its output
    for i, (channels, blocks) in enumerate(STAGES):
        stage = np.zeros(channels)
        for _ in range(blocks + bool(i)):
            reads = np.square(weights.convs[conv + 1].kernel).sum(axis=(0, 1, 3))
            kept_middle.append(np.sort(np.argsort(-energy[tap] * reads)[: middle[i]]))
            stage += energy[tap + 1]
            tap, conv = tap + 2, conv + 2
        kept_stream.append(np.sort(np.argsort(-stage)[: stream[i]]))
    return Pruning(tuple(kept_stream), tuple(kept_middle), stem_stride)


class _Batches(BackgroundBatches):
    """(student input, dlib target, crop index) batches: each face mirrored or not, its target
    with it; with a ``teacher``, most crops also moved and their target embedded anew. The
    index (of the crop, or of a blend's first face) is what the neighbourhood term leaves out
    of the bank: a face is not its own neighbour."""

    def __init__(
        self,
        crops: np.ndarray,
        targets: np.ndarray,
        batch: int,
        seed: int,
        teacher: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        moved_share: float = MOVED_SHARE,
        mix_share: float = 0.0,
        stream: int = 0,
    ) -> None:
        self.crops, self.targets, self.batch, self.teacher = crops, targets, batch, teacher
        self.moved_share, self.mix_share = moved_share, mix_share
        super().__init__(seed, stream)

    def _one(self, crop: np.ndarray, degradations: AugmentConfig) -> np.ndarray:
        if self.rng.random() < DEGRADED_SHARE:
            return augment_one(crop, self.rng, degradations)
        return crop.astype(np.float32)

    def make(self) -> tuple:
        idx = self.rng.choice(len(self.crops), self.batch, replace=False)
        mirrored = self.rng.random(self.batch) < 0.5
        crops = [
            self.crops[i][:, ::-1] if m else self.crops[i]
            for i, m in zip(idx, mirrored, strict=True)
        ]
        targets = self.targets[mirrored.astype(int), idx]
        if self.teacher is None:
            return np.stack([self._one(c, DOOR_DEGRADATIONS) for c in crops]), targets, idx
        moved = np.flatnonzero(self.rng.random(self.batch) < self.moved_share)
        for k in moved:
            crops[k] = move(crops[k], self.rng, MOVES)
        mixed = np.flatnonzero(self.rng.random(self.batch) < self.mix_share)
        crops = blends(crops, mixed, self.rng)
        anew = np.union1d(moved, mixed)
        if len(anew):
            targets[anew] = self.teacher(np.stack([crops[k] for k in anew]))
        return np.stack([self._one(c, DOOR_PHOTOMETRIC) for c in crops]), targets, idx


def blends(crops: list[np.ndarray], which: np.ndarray, rng: np.random.Generator) -> list:
    """``crops`` with each of ``which`` replaced by a blend of it and another crop of the list
    (weight uniform in [0, 1], uint8): inputs between two faces, for the teacher to answer."""
    out = list(crops)
    for k in which:
        other = crops[int(rng.integers(len(crops)))]
        w = rng.random()
        blend = w * crops[k].astype(np.float32) + (1 - w) * other.astype(np.float32)
        out[k] = np.round(blend).astype(np.uint8)
    return out


def _optimizer(model: Any) -> Any:
    """AdamW over the model's trainable weights, built (so a checkpoint can be loaded into it)."""
    import keras

    optimizer = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-5, clipnorm=1.0)
    optimizer.build(model.trainable_variables)
    return optimizer


def neighbourhood_kl(student: Any, target: Any, bank: Any, own: Any, temperature: float) -> Any:
    """Mean KL(teacher || student) between softmax distributions over a bank of faces.

    ``student``, ``target`` (batch, d) and ``bank`` (n, d) are unit vectors (centred first);
    each row's distribution is softmax(cosine to every bank face / ``temperature``), the row's
    own face (``own``, its bank index) left out. At a low temperature the few nearest faces
    carry the distribution, so the loss spends its gradient where a student's embedding is
    likeliest to land nearer a look-alike than the teacher's does: the strict tail (false
    accepts at 1e-3) that a door's "never the wrong name" threshold lives on."""
    import tensorflow as tf

    mask = tf.one_hot(own, tf.shape(bank)[0], on_value=-1e9, off_value=0.0)
    teacher = tf.nn.log_softmax(tf.matmul(target, bank, transpose_b=True) / temperature + mask)
    pupil = tf.nn.log_softmax(tf.matmul(student, bank, transpose_b=True) / temperature + mask)
    return tf.reduce_mean(tf.reduce_sum(tf.exp(teacher) * (teacher - pupil), axis=1))


def _train_step(model: Any, optimizer: Any, cfg: DistilConfig, centre: np.ndarray, bank):
    """One optimiser step: 1 - centred cosine to dlib, the relational term and, with
    ``cfg.bank_weight``, the neighbourhood term over ``bank`` (dlib's targets of the
    training crops). Returns the three loss terms."""
    import tensorflow as tf

    mean = tf.constant(centre[None], tf.float32)
    if cfg.bank_weight > 0:  # the neighbourhood term's bank, centred and unit, made once
        bank = tf.math.l2_normalize(tf.constant(bank - centre, tf.float32), axis=1)

    @tf.function(reduce_retracing=True)
    def step(x, target, own, lr):
        optimizer.learning_rate.assign(lr)
        with tf.GradientTape() as tape:
            student = tf.math.l2_normalize(model(x, training=True) - mean, axis=1)
            target = tf.math.l2_normalize(target - mean, axis=1)
            point = tf.reduce_mean(1.0 - tf.reduce_sum(student * target, axis=1))
            relational = tf.reduce_mean(
                tf.square(
                    tf.matmul(student, student, transpose_b=True)
                    - tf.matmul(target, target, transpose_b=True)
                )
            )
            neighbours = (
                neighbourhood_kl(student, target, bank, own, cfg.bank_temperature)
                if cfg.bank_weight > 0
                else tf.constant(0.0)
            )
            loss = point + cfg.relational_weight * relational + cfg.bank_weight * neighbours
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return point, relational, neighbours

    return step


def freeze_after(model: Any, stages: int) -> int:
    """Freeze every layer after the stem and the first ``stages`` of :data:`STAGES` (0 or
    more than there are: freeze nothing); return how many convolutions stay trainable. Counts
    the convolutions ``build_model`` makes, in its order: the stem, then two per block; the
    shortcut's fixed channel mapping (no bias) is not one of them."""
    if not 0 < stages < len(STAGES):
        return sum(1 for layer in model.layers if _is_weight_conv(layer))
    keep = 1 + sum(2 * (blocks + bool(i)) for i, (_, blocks) in enumerate(STAGES[:stages]))
    seen = 0
    for layer in model.layers:
        if _is_weight_conv(layer):
            seen += 1
        if seen > keep or layer.__class__.__name__ == "Dense":
            layer.trainable = False
    return keep


def _is_weight_conv(layer: Any) -> bool:
    return layer.__class__.__name__ == "Conv2D" and layer.use_bias


def _int8_dlib() -> Callable[[np.ndarray], np.ndarray]:
    """dlib's embedding of uint8 RGB crops, from the shipped int8 model on one LiteRT thread
    (cosine 0.999 to the float network's on average): fast enough for the batch thread."""
    from edge.embedder import Embedder
    from edge.pipeline import resolve_model

    embedder = Embedder(resolve_model("dlib-resnet-v1"), threads=1)
    if embedder.preprocessing != DLIB_CHIP:
        raise DataError(f"{embedder.path}: not dlib's chip ({embedder.preprocessing})")
    return embedder.embed


def _pruning_record(pruning: Pruning | None, init_from: str) -> dict:
    """The widths kept: this run's choice, or the record of the run it continued."""
    if pruning is not None:
        return pruning.widths() | {"stem_stride": pruning.stem_stride}
    earlier = Path(init_from).parent / "training.json"
    try:
        return json.loads(earlier.read_text())["pruning"]
    except (OSError, ValueError, KeyError):
        return {"continued_from": init_from}


#: the false-accept rate of the held-out tail check: look-alikes, where a door's threshold is
TAIL_FAR = 1e-3


def held_out_check(
    model: Any, held: FaceSet, targets: np.ndarray, centre: np.ndarray
) -> tuple[float, float]:
    """(mean cosine between the model's and dlib's embeddings of held-out faces, both centred
    as the loss compares them; TAR at FAR :data:`TAIL_FAR` over every pair of held-out faces,
    on the model's raw cosine as the edge matches). The first says how close the copy is on
    average, the second how well it keeps look-alike people apart."""
    from trainer.calibration import all_pairs
    from trainer.evaluate import tar_at_far

    emb = embed(model, held.crops, batch=100)
    centred, targets = emb - centre, targets - centre
    cos = (
        np.sum(centred * targets, axis=1)
        / np.linalg.norm(centred, axis=1)
        / np.linalg.norm(targets, axis=1)
    )
    return float(np.mean(cos)), tar_at_far(*all_pairs(emb, held.labels), TAIL_FAR)


def _faces(cfg: DistilConfig) -> tuple[FaceSet, FaceSet]:
    from trainer.cache import DEFAULT_CACHE

    faces = load_faces(
        cfg.roots,
        CHIP_SIZE,
        cache_dir=cfg.cache or DEFAULT_CACHE,
        exclude_pairs=cfg.exclude_pairs,
        progress=cfg.progress,
        preprocessing=DLIB_CHIP,
    )
    train, held = split_by_identity(faces, cfg.val_fraction, cfg.seed)
    if held is None:
        raise DataError("the split held out no identities: raise --val-fraction")
    return train, held


def _starting_model(
    cfg: DistilConfig, weights: DlibWeights, train: FaceSet
) -> tuple[Any, Pruning | None]:
    """The run ``cfg.init_from`` names, as it ended (no pruning chosen here), or dlib pruned
    by the channels' signal on ``cfg.select_faces`` training faces."""
    if cfg.init_from:
        from trainer.recover import dlib_pruned_from_tflite, trained_model

        rebuild = partial(dlib_pruned_from_tflite, weights=weights)
        return trained_model(Path(cfg.init_from), rebuild), None
    rng = np.random.default_rng(cfg.seed)
    sample = train.crops[
        rng.choice(len(train.crops), min(cfg.select_faces, len(train.crops)), replace=False)
    ]
    pruning = select_channels(weights, sample, cfg.stream, cfg.middle, cfg.stem_stride)
    return build_model(weights, pruning), pruning


@dataclass
class _Progress:
    """Where a run stands: what its checkpoint keeps and ``--resume`` goes on from."""

    steps: int = 0
    elapsed_s: float = 0.0  # training time so far, of the time budget
    start_cos: float = math.nan
    start_tar: float = math.nan  # held-out TAR at FAR TAIL_FAR at the start
    curve: list = field(default_factory=list)  # (minutes, steps, held-out cosine, TAR)
    resumed_at: list = field(default_factory=list)  # steps where a --resume went on


def _resume(cfg: DistilConfig, ckpt: Path, model: Any, optimizer: Any, log) -> _Progress | None:
    """The progress of ``ckpt`` loaded into model and optimiser, or None where there is none
    to resume. TrainingError, one line, when it was made with other options."""
    if not (cfg.resume and (ckpt / "state.json").exists()):
        if cfg.resume:
            log(f"--resume: no checkpoint in {ckpt}, starting afresh")
        return None
    state = load_checkpoint(ckpt, model, optimizer, [])
    check_resume_options(ckpt, state.get("options", {}), resume_options(cfg))
    try:
        progress = _Progress(**state["progress"])
    except (KeyError, TypeError):
        raise TrainingError(f"{ckpt}: cannot resume (no usable progress in state.json)") from None
    progress.resumed_at.append(progress.steps)
    log(f"resumed at step {progress.steps}, {progress.elapsed_s / 60:.1f} min trained")
    return progress


def _fit(
    cfg: DistilConfig, step, batches: BackgroundBatches, held_check, log, at: _Progress, save
) -> None:
    """Train until the time budget is spent (warm-up, then cosine decay over the minutes),
    going on from ``at``; at each sixth of the budget the held-out cosine and ``save()``."""
    import tensorflow as tf

    budget = cfg.time_budget_min * 60
    checks = budget / 6  # seconds between held-out checks (and checkpoints)
    started, before = time.monotonic(), at.elapsed_s
    next_check = (math.floor(before / checks) + 1) * checks
    while (elapsed := before + time.monotonic() - started) < budget:
        lr = warmup_cosine_lr(cfg.lr, cfg.warmup_steps, at.steps, elapsed / budget)
        x, target, own = batches.get()
        point, relational, neighbours = step(
            tf.constant(x), tf.constant(target), tf.constant(own), tf.constant(lr, tf.float32)
        )
        at.steps += 1
        if at.steps % 200 == 0:
            log(
                f"step {at.steps}, {elapsed / 60:.1f} of {cfg.time_budget_min:g} min: "
                f"1 - cos {float(point):.4f}, relational {float(relational):.5f}, "
                f"neighbourhood {float(neighbours):.4f}, "
                f"{at.steps * cfg.batch / elapsed:.0f} faces/s"
            )
        if elapsed > next_check:
            at.elapsed_s = elapsed
            cos, tar = held_check()
            at.curve.append((round(elapsed / 60, 2), at.steps, round(cos, 4), round(tar, 4)))
            log(f"held-out cosine to dlib {cos:.4f}, TAR at FAR {TAIL_FAR:g} {tar:.4f}")
            save()
            next_check += checks
    at.elapsed_s = min(budget, before + time.monotonic() - started)


def distil(cfg: DistilConfig, faces: tuple[FaceSet, FaceSet] | None = None) -> dict:
    """Prune, distil for ``cfg.time_budget_min`` minutes, write ``encoder.keras`` and
    ``training.json`` into ``cfg.out``; return the record. ``faces`` (train, held out) replaces
    loading ``cfg.roots`` (tests). A checkpoint goes to ``out/checkpoint`` at each held-out
    check; ``cfg.resume`` goes on from it (same options, the rest of the same time budget)."""
    from trainer.cache import DEFAULT_CACHE

    check_widths(cfg.stream, cfg.middle)
    if cfg.mix_share > 0 and not cfg.moved_targets:
        # blends were measured with moved crops; without them the student's inputs would also
        # lose the geometric jitter (the teacher's path applies only photometric degradations)
        raise DataError("--mix-share needs --moved-targets")
    log = print if cfg.progress else (lambda *_: None)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train, held = faces or _faces(cfg)
    weights = read_weights(packaged_weights())
    cache = Path(cfg.cache or DEFAULT_CACHE) if faces is None else None
    targets, held_targets = _dlib_targets(weights, train, held, cache, log)
    centre = targets.mean(axis=(0, 1))
    model, pruning = _starting_model(cfg, weights, train)
    trainable_convs = freeze_after(model, cfg.trainable_stages)
    optimizer = _optimizer(model)

    def held_check() -> tuple[float, float]:
        return held_out_check(model, held, held_targets, centre)

    ckpt = out / "checkpoint"
    at = _resume(cfg, ckpt, model, optimizer, log)
    if at is None:
        start_cos, start_tar = held_check()
        at = _Progress(start_cos=start_cos, start_tar=start_tar)
    log(
        f"{model.count_params():,} parameters ({trainable_convs} convolutions trained); "
        f"held-out cosine to dlib at the start {at.start_cos:.4f}, "
        f"TAR at FAR {TAIL_FAR:g} {at.start_tar:.4f}"
    )

    def save() -> None:
        state = {"options": resume_options(cfg), "progress": asdict(at)}
        save_checkpoint(ckpt, model, optimizer, [], state)

    step = _train_step(model, optimizer, cfg, centre, targets[0])
    batches = _Batches(
        train.crops,
        targets,
        cfg.batch,
        cfg.seed,
        _int8_dlib() if cfg.moved_targets else None,
        mix_share=cfg.mix_share,
        stream=at.steps,
    )
    try:
        _fit(cfg, step, batches, held_check, log, at, save)
    finally:
        batches.close()
    final, final_tar = held_check()
    if not np.isfinite(final):
        raise TrainingError(
            f"held-out cosine to dlib is {final} after {at.steps} steps (diverged); nothing written"
        )
    record = _record(cfg, model, pruning, centre, at, (final, final_tar), held)
    text = json.dumps(record, indent=2, allow_nan=False)  # strict JSON, checked before writing
    model.save(out / "encoder.keras")
    (out / "training.json").write_text(text)
    log(
        f"held-out cosine to dlib {final:.4f}, TAR at FAR {TAIL_FAR:g} {final_tar:.4f} after "
        f"{at.steps} steps; wrote {out / 'encoder.keras'}"
    )
    return record


def _dlib_targets(weights, train: FaceSet, held: FaceSet, cache: Path | None, log):
    """dlib's float embeddings of the training crops (and their mirrors; cached under
    ``cache`` by the faces' paths) and of the held-out clean crops, what ``held_check`` compares."""
    teacher = build_model(weights)
    key = hashlib.sha1("\n".join(train.paths).encode()).hexdigest()[:12]  # these very faces
    targets = teacher_targets(
        teacher, train.crops, cache and cache / f"dlib-targets-{key}.npy", log
    )
    return targets, embed(teacher, held.crops)


def _record(cfg: DistilConfig, model, pruning, centre, at: _Progress, final: tuple, held) -> dict:
    """``training.json``: what was kept of dlib, how long it trained, how close it came."""
    return {
        "preprocessing": DLIB_CHIP,
        "recipe": "dlib pruned by channel, distilled onto dlib (trainer prune-dlib)",
        "config": {k: v for k, v in asdict(cfg).items() if k != "progress"},
        "pruning": _pruning_record(pruning, cfg.init_from),
        "target_centre_norm": round(float(np.linalg.norm(centre)), 4),
        "parameters": int(model.count_params()),
        "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        "steps": at.steps,
        "train_minutes": round(at.elapsed_s / 60, 2),
        "resumed_at_steps": at.resumed_at,
        "held_out": {
            "identities": len(np.unique(held.labels)),
            "faces": len(held.labels),
        },
        "held_out_cosine_to_dlib": {
            "start": round(at.start_cos, 4),
            "end": round(final[0], 4),
            "curve": at.curve,  # minutes, steps, cosine, TAR at FAR TAIL_FAR
        },
        f"held_out_tar_at_far_{TAIL_FAR:g}": {
            "start": round(at.start_tar, 4),
            "end": round(final[1], 4),
        },
        "licence": f"initialised from {LICENCE}; distilled on the training roots",
    }
