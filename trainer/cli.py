"""``trainer train`` and ``trainer evaluate``. Bad input ends as ``error: <one line>``, exit 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edge.cli import bounded
from edge.detectors.settings import TRAINING_DETECTOR, add_detector_options, settings_from_args
from edge.embedder import MAX_THREADS
from edge.errors import run_command
from trainer.cache import DEFAULT_CACHE
from trainer.errors import DataError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="trainer", description="Train and evaluate doorface face encoders."
    )
    sub = ap.add_subparsers(dest="command", required=True)

    _add_train(sub)
    _add_prune_dlib(sub)
    _add_recalibrate(sub)
    _add_evaluate(sub)
    return ap


def _add_train(sub) -> None:
    t = sub.add_parser(
        "train",
        help="train an encoder on folder-per-identity image roots",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("roots", nargs="+", help="data roots laid out ROOT/Person/image.jpg")
    t.add_argument("--out", default="runs/default", help="output folder")
    _train_model_options(t)
    _train_loss_options(t)
    _train_teacher_options(t)
    _train_schedule_options(t)
    _train_data_options(t)
    t.add_argument("--seed", type=bounded(int, 0), default=0)
    t.add_argument(
        "--threads",
        type=bounded(int, 0, MAX_THREADS),
        default=0,
        help="TensorFlow intra-op threads (0: all)",
    )
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    t.add_argument(
        "--init-from",
        default="",
        metavar="MODEL",
        help="start from this encoder (encoder.keras, or a shipped int8 .tflite rebuilt in "
        "float); fresh optimizer and schedule",
    )
    t.add_argument("--quiet", action="store_true")


def _train_model_options(t: argparse.ArgumentParser) -> None:
    g = t.add_argument_group("encoder")
    g.add_argument(
        "--input-size", type=bounded(int, 32), default=64, help="aligned crop side (pixels)"
    )
    g.add_argument("--embedding-size", type=bounded(int, 1), default=128)
    g.add_argument(
        "--width",
        type=bounded(float, 0, low_open=True),
        default=1.0,
        help="channel width multiplier",
    )
    g.add_argument(
        "--activation",
        choices=["relu", "prelu"],
        default="relu",
        help="relu: 20x faster int8 on LiteRT/XNNPACK than MobileFaceNet's prelu (measured)",
    )


def _train_loss_options(t: argparse.ArgumentParser) -> None:
    g = t.add_argument_group("loss")
    g.add_argument(
        "--loss",
        default="semihard",
        choices=["semihard", "batchhard", "staged", "contrastive", "koch"],
        help="metric loss; 'staged' = semi-hard, then batch-hard after --staged-switch",
    )
    g.add_argument(
        "--margin", type=bounded(float, 0), default=0.2, help="triplet margin (squared distance)"
    )
    g.add_argument(
        "--staged-switch",
        type=bounded(float, 0, 1),
        default=0.6,
        help="progress at which 'staged' turns batch-hard",
    )
    g.add_argument(
        "--head",
        default="none",
        choices=["none", "cosface", "arcface"],
        help="margin-softmax head used only in training",
    )
    g.add_argument("--head-weight", type=bounded(float, 0), default=1.0)


def _train_teacher_options(t: argparse.ArgumentParser) -> None:
    g = t.add_argument_group("distillation")
    g.add_argument(
        "--teacher",
        default="none",
        choices=["none", "dlib"],
        help="distil from a teacher's centred embeddings (needs doorface[teacher])",
    )
    g.add_argument("--teacher-weight", type=bounded(float, 0), default=1.0)
    g.add_argument(
        "--relational-weight",
        type=bounded(float, 0),
        default=0.0,
        help="also match the teacher's pairwise cosine similarities within a batch",
    )
    g.add_argument(
        "--teacher-margin-max",
        type=bounded(float, 0),
        default=0.0,
        help="semi-hard margins per triplet from --margin up to this, set by the teacher's "
        "distances (triplet distillation; 0: one fixed margin)",
    )
    g.add_argument(
        "--teacher-minutes",
        type=bounded(float, 0),
        default=0.0,
        help="stop embedding teacher faces after this long (0: all); the rest get no target",
    )


def _train_schedule_options(t: argparse.ArgumentParser) -> None:
    g = t.add_argument_group("batches and schedule")
    g.add_argument("--p", type=bounded(int, 2), default=32, help="identities per batch")
    g.add_argument("--k", type=bounded(int, 2), default=4, help="images per identity")
    g.add_argument(
        "--singletons",
        type=bounded(int, 0),
        default=8,
        help="one-image identities per batch (negatives)",
    )
    g.add_argument("--steps-per-epoch", type=bounded(int, 1), default=200)
    g.add_argument(
        "--epochs",
        type=bounded(int, 1),
        default=1000,
        help="upper bound; --time-budget usually ends first",
    )
    g.add_argument(
        "--time-budget",
        type=bounded(float, 0),
        default=0.0,
        metavar="MINUTES",
        help="stop after this many training minutes (0: none)",
    )
    g.add_argument("--lr", type=bounded(float, 0, low_open=True), default=2e-3)
    g.add_argument("--warmup-steps", type=bounded(int, 0), default=200)
    g.add_argument("--weight-decay", type=bounded(float, 0), default=5e-4)
    g.add_argument(
        "--val-fraction",
        type=bounded(float, 0, 1, high_open=True),
        default=0.05,
        help="identities held out for validation",
    )


def _train_data_options(t: argparse.ArgumentParser) -> None:
    g = t.add_argument_group("data")
    g.add_argument(
        "--monitor-pairs", default="", help="LFW pairs file scored every epoch (monitoring only)"
    )
    g.add_argument("--monitor-root", default="", help="image root of --monitor-pairs")
    g.add_argument(
        "--exclude-pairs",
        action="append",
        default=[],
        metavar="FILE",
        help="leave every person named in this LFW pairs file out of training (repeatable)",
    )
    g.add_argument("--cache", default=str(DEFAULT_CACHE), help="face cache folder")
    add_detector_options(t, TRAINING_DETECTOR)
    g.add_argument(
        "--augment",
        choices=["basic", "door", "none"],
        default="basic",
        help="door: also small faces, side light, darkness, motion blur, JPEG (trainer/augment.py)",
    )


def _add_prune_dlib(sub) -> None:
    d = sub.add_parser(
        "prune-dlib",
        help="dlib's ResNet pruned by channel and distilled back onto dlib (a fast candidate)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d.add_argument("roots", nargs="+", help="data roots laid out ROOT/Person/image.jpg")
    d.add_argument("--out", default="runs/pruned", help="output folder")
    d.add_argument(
        "--stream",
        default="24,48,96,128,128",
        help="channels kept per stage (dlib: 32,64,128,256,256)",
    )
    d.add_argument("--middle", default="16,24,48,48,48", help="channels inside each stage's blocks")
    d.add_argument(
        "--stem-stride", type=int, choices=[2, 4], default=4, help="4: one 7x7/4 conv, no max pool"
    )
    d.add_argument(
        "--time-budget", type=bounded(float, 0, low_open=True), default=60.0, metavar="MINUTES"
    )
    d.add_argument("--batch", type=bounded(int, 2), default=48)
    d.add_argument("--lr", type=bounded(float, 0, low_open=True), default=5e-4)
    d.add_argument("--relational-weight", type=bounded(float, 0), default=1.0)
    d.add_argument(
        "--bank-weight",
        type=bounded(float, 0),
        default=0.0,
        help="weight of the neighbourhood term: the student's similarities to dlib's embeddings"
        " of every training face made to match dlib's own (0: off)",
    )
    d.add_argument(
        "--bank-temperature",
        type=bounded(float, 0, low_open=True),
        default=0.05,
        help="softmax temperature of the neighbourhood term (lower: the nearest faces weigh more)",
    )
    d.add_argument(
        "--val-fraction",
        type=bounded(float, 0, 1, high_open=True),
        default=0.05,
        help="identities held out",
    )
    d.add_argument("--seed", type=bounded(int, 0), default=0)
    d.add_argument("--exclude-pairs", action="append", default=[], metavar="FILE")
    d.add_argument("--cache", default=str(DEFAULT_CACHE), help="face cache folder")
    d.add_argument(
        "--init-from",
        default="",
        metavar="MODEL",
        help="continue from this run's encoder.keras, or a shipped int8 .tflite of this network",
    )
    d.add_argument(
        "--trainable-stages",
        type=bounded(int, 0, 4),
        default=0,
        help="train only the stem and this many first stages, the rest kept as is (0: all)",
    )
    d.add_argument(
        "--moved-targets",
        action="store_true",
        help="move most crops and embed dlib's target anew for each (int8 dlib, batch thread)",
    )
    d.add_argument(
        "--mix-share",
        type=bounded(float, 0.0, 1.0),
        default=0.0,
        help="share of crops blended with another face, dlib's target embedded for the blend "
        "(needs --moved-targets)",
    )
    d.add_argument(
        "--resume",
        action="store_true",
        help="go on from OUT/checkpoint (saved at each held-out check) with the same options",
    )
    d.add_argument(
        "--threads",
        type=bounded(int, 0, MAX_THREADS),
        default=0,
        help="TensorFlow intra-op threads (0: all)",
    )
    d.add_argument("--quiet", action="store_true")


def _add_recalibrate(sub) -> None:
    r = sub.add_parser(
        "recalibrate",
        help="recompute a finished run's threshold and confidence on its held-out identities",
    )
    r.add_argument("run", help="the run folder (training.json + encoder.keras)")
    r.add_argument("--quiet", action="store_true")


def _add_evaluate(sub) -> None:
    e = sub.add_parser(
        "evaluate", help="LFW-style pair verification of a .keras or .tflite encoder"
    )
    e.add_argument("--model", required=True, help="encoder.keras or a .tflite with its manifest")
    e.add_argument("--images", required=True, help="image root (ROOT/Name/Name_0001.jpg)")
    e.add_argument("--pairs", required=True, help="pairs file to score")
    e.add_argument(
        "--threshold-pairs", default="", help="pairs file to choose the threshold on (else 10-fold)"
    )
    e.add_argument("--json", default="", help="write the numbers here")
    e.add_argument("--plots", default="", help="write roc.png and scores.png here")
    add_detector_options(e, TRAINING_DETECTOR)
    e.add_argument(
        "--n-way",
        type=bounded(int, 0),
        default=100,
        help="one-shot identification among this many of the file's people (0: skip)",
    )
    e.add_argument(
        "--trials", type=bounded(int, 1), default=1000, help="one-shot identification trials"
    )
    e.add_argument(
        "--per-person",
        type=bounded(int, 2),
        default=10,
        help="photos per person for identification",
    )
    e.add_argument("--quiet", action="store_true")


def _train(args: argparse.Namespace) -> int:
    from trainer.train import TrainConfig, train

    cfg = TrainConfig(
        roots=list(args.roots),
        out=args.out,
        input_size=args.input_size,
        embedding_size=args.embedding_size,
        width=args.width,
        activation=args.activation,
        loss=args.loss,
        margin=args.margin,
        staged_switch=args.staged_switch,
        head=args.head,
        head_weight=args.head_weight,
        teacher=args.teacher,
        teacher_weight=args.teacher_weight,
        relational_weight=args.relational_weight,
        teacher_margin_max=args.teacher_margin_max,
        teacher_minutes=args.teacher_minutes,
        p=args.p,
        k=args.k,
        singletons=args.singletons,
        steps_per_epoch=args.steps_per_epoch,
        epochs=args.epochs,
        time_budget_min=args.time_budget,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        val_fraction=args.val_fraction,
        monitor_pairs=args.monitor_pairs,
        monitor_root=args.monitor_root,
        exclude_pairs=list(args.exclude_pairs),
        cache=args.cache,
        detector=settings_from_args(args),
        seed=args.seed,
        threads=args.threads,
        augment=args.augment,
        resume=args.resume,
        init_from=args.init_from,
        progress=not args.quiet,
    )
    if cfg.input_size < 32 or cfg.input_size % 8:
        raise DataError(f"--input-size: must be a multiple of 8 and >= 32, got {cfg.input_size}")
    record = train(cfg)
    print(
        json.dumps(
            {
                "out": cfg.out,
                "threshold": record["threshold"],
                "train_minutes": record["train_minutes"],
            }
        )
    )
    return 0


def _widths(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise DataError(f"{option}: comma-separated channel counts, got {text!r}") from None


def _prune_dlib(args: argparse.Namespace) -> int:
    from trainer.dlib_pruned import TAIL_FAR, DistilConfig, distil
    from trainer.train import set_threads

    set_threads(args.threads)
    cfg = DistilConfig(
        roots=list(args.roots),
        out=args.out,
        stream=_widths(args.stream, "--stream"),
        middle=_widths(args.middle, "--middle"),
        stem_stride=args.stem_stride,
        time_budget_min=args.time_budget,
        batch=args.batch,
        lr=args.lr,
        relational_weight=args.relational_weight,
        bank_weight=args.bank_weight,
        bank_temperature=args.bank_temperature,
        val_fraction=args.val_fraction,
        seed=args.seed,
        exclude_pairs=list(args.exclude_pairs),
        cache=args.cache,
        init_from=args.init_from,
        trainable_stages=args.trainable_stages,
        moved_targets=args.moved_targets,
        mix_share=args.mix_share,
        resume=args.resume,
        progress=not args.quiet,
    )
    record = distil(cfg)
    tail = f"held_out_tar_at_far_{TAIL_FAR:g}"
    print(
        json.dumps(
            {
                "out": cfg.out,
                "held_out_cosine_to_dlib": record["held_out_cosine_to_dlib"]["end"],
                tail: record[tail]["end"],
            }
        )
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from trainer.report import evaluate_model

    result = evaluate_model(
        args.model,
        args.images,
        args.pairs,
        threshold_pairs=args.threshold_pairs or None,
        plots=args.plots or None,
        detector_settings=settings_from_args(args),
        n_way=args.n_way,
        trials=args.trials,
        per_person=args.per_person,
        progress=not args.quiet,
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def _recalibrate(args: argparse.Namespace) -> int:
    from trainer.train import recalibrate

    record = recalibrate(args.run, progress=not args.quiet)
    point = record["metrics"]["holdout_identities"]
    print(json.dumps({"threshold": record["threshold"], **point, **record["confidence"]}))
    return 0


def _check_n_way(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """evaluate --n-way: 0 skips identification, 1 is no choice at all (argparse's one-line
    usage error, exit 2)."""
    if args.command == "evaluate" and args.n_way == 1:
        ap.error("argument --n-way: must be 0 (skip) or >= 2, got 1")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = _parser()
    args = ap.parse_args(argv)
    _check_n_way(ap, args)
    try:
        commands = {
            "train": _train,
            "prune-dlib": _prune_dlib,
            "recalibrate": _recalibrate,
            "evaluate": _evaluate,
        }
        return run_command(lambda: commands[args.command](args))
    except (ValueError, OSError) as exc:  # last-resort guard for input we did not foresee
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"error: {line}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
