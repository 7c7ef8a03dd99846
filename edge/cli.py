"""``edge`` command line: enroll, identify, gallery, bench (and run/check-config/demo).

Bad input never produces a traceback: DoorfaceError subclasses print ``error: <one line>``
and exit with status 2; per-file problems are reported as counted skips.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Callable

from edge.detectors.settings import add_detector_options, settings_from_args
from edge.embedder import MAX_THREADS, RECOGNITION_EXPOSURE, RECOGNITION_FLIP, RECOGNITION_ZOOM
from edge.errors import DoorfaceError, run_command

log = logging.getLogger("edge")


# -- argument types: a bad value is argparse's one-line usage error, exit status 2 ----------
def bounded(
    kind: type[int] | type[float],
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], float]:
    """An argparse ``type=`` that parses ``kind`` and refuses nan, inf and values below
    ``low`` or above ``high`` (``high`` only with ``low``; ``low_open`` / ``high_open``: the
    bound itself is refused too): ``argument --threads: must be 1..64, got '0'``."""
    noun = "an integer" if kind is int else "a number"
    above = f"{'>' if low_open else '>='} {low:g}" if low is not None else ""
    if low is not None and high is not None:
        closed = not (low_open or high_open)
        below = f"{'<' if high_open else '<='} {high:g}"
        rule = f"{low:g}..{high:g}" if closed else f"{above} and {below}"
    elif low is not None:
        rule = above
    else:
        rule = f"{noun}, not nan or inf"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    return parse


# -- shared option groups ----------------------------------------------------------------
def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", help="encoder .tflite (its .json manifest beside it); default: the shipped model"
    )
    p.add_argument(
        "--threads",
        type=bounded(int, 1, MAX_THREADS),
        default=1,
        help=f"LiteRT interpreter threads, 1..{MAX_THREADS} (default 1)",
    )
    p.add_argument(
        "--no-flip",
        dest="flip",
        action="store_false",
        default=RECOGNITION_FLIP,
        help="embed each face once, not also mirrored (enrol and match the same way)",
    )
    p.add_argument(
        "--no-exposure",
        dest="exposure",
        action="store_false",
        default=RECOGNITION_EXPOSURE,
        help="embed dark faces as they are, not brightened (edge/exposure.py)",
    )
    p.add_argument(
        "--zoom",
        action="store_true",
        default=RECOGNITION_ZOOM,
        help="also embed each view zoomed in (twice the time; enrol and match the same way)",
    )


def _detector(args: argparse.Namespace):
    """The detector of ``--detector/--detector-model/--detect-width`` (one factory for all)."""
    from edge.detectors import create_detector

    return create_detector(settings_from_args(args))


def _embedder(args: argparse.Namespace):
    from edge.embedder import Embedder
    from edge.pipeline import resolve_model

    return Embedder(
        resolve_model(args.model),
        threads=args.threads,
        flip=args.flip,
        exposure=args.exposure,
        zoom=args.zoom,
    )


# -- enroll ------------------------------------------------------------------------------
def cmd_enroll(args: argparse.Namespace) -> int:
    from edge.enroll import crops_from_images, crops_from_source
    from edge.gallery import Gallery, gallery_lock
    from edge.pipeline import detector_mismatch

    if bool(args.paths) == bool(args.source):
        raise DoorfaceError("enroll: give image PATHs or --source (not both)")
    embedder = _embedder(args)
    gallery = Gallery.open_or_create(
        args.gallery, embedder.model_id, embedder.input_size, embedder.embedding_size
    )
    detector = _detector(args)
    mismatch = detector_mismatch(detector, embedder)
    if mismatch:
        log.warning("%s", mismatch)
    if args.source:
        result = crops_from_source(
            args.source, detector, embedder, args.count, timeout=args.timeout
        )
    else:
        result = crops_from_images(
            args.paths,
            detector,
            embedder.input_size,
            min_face=args.min_face,
            preprocessing=embedder.preprocessing,
        )
    for reason in result.skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    if not result.crops:
        print(f"error: no usable face for {args.name}; gallery unchanged", file=sys.stderr)
        return 1
    import numpy as np

    embeddings = embedder.embed(np.stack(result.crops))
    with gallery_lock(args.gallery):  # load again: another writer may have changed it meanwhile
        gallery = Gallery.open_or_create(
            args.gallery, embedder.model_id, embedder.input_size, embedder.embedding_size
        )
        gallery.enroll(args.name, np.stack(result.stored_crops), embeddings, result.sources)
        gallery.save()
    total = sum(p.samples for p in gallery.persons() if p.name == args.name)
    print(
        f"enrolled {args.name}: {len(result.crops)} faces used, {len(result.skipped)} skipped "
        f"({total} samples in total) -> {gallery.path}"
    )
    return 0


# -- identify ----------------------------------------------------------------------------
def cmd_identify(args: argparse.Namespace) -> int:
    from edge.errors import ImageError
    from edge.image import list_images, load_image
    from edge.pipeline import recognizer_from_files

    recognizer = recognizer_from_files(
        args.model,
        args.gallery,
        settings_from_args(args),
        threads=args.threads,
        threshold=args.threshold,
        margin=args.margin,
        flip=args.flip,
        exposure=args.exposure,
        zoom=args.zoom,
    )
    images, problems = list_images(args.paths)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    failures = len(problems)
    for path in images:
        try:
            image = load_image(path)
        except ImageError as exc:
            failures += 1
            if args.json:
                print(json.dumps({"image": str(path), "faces": [], "error": str(exc)}))
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        results = recognizer.recognize_faces(image)
        faces = [
            {
                "box": [round(v) for v in r.face.box],
                "name": r.match.name,
                "score": round(r.match.score, 4),
                "confidence": _rounded(r.match.confidence),
            }
            for r in results
        ]
        if args.json:
            print(json.dumps({"image": str(path), "faces": faces}))
        elif not faces:
            print(f"{path}: no face")
        else:
            text = "; ".join(
                f"{f['name'] or 'unknown'} ({f['score']:.2f}) at {f['box']}" for f in faces
            )
            print(f"{path}: {text}")
    return 1 if failures and failures == len(images) + len(problems) else 0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# -- gallery -----------------------------------------------------------------------------
def cmd_gallery(args: argparse.Namespace) -> int:
    from edge.gallery import Gallery, gallery_lock

    gallery = Gallery.load(args.gallery)
    if args.action != "list":
        with gallery_lock(args.gallery):  # one writer: load again inside the lock
            return _change_gallery(args, Gallery.load(args.gallery))
    people = gallery.persons()
    if args.json:
        print(
            json.dumps(
                {
                    "model_id": gallery.model_id,
                    "people": [{"name": p.name, "samples": p.samples} for p in people],
                }
            )
        )
    else:
        print(f"{gallery.path}: {len(people)} people, model {gallery.model_id[:12]}")
        for p in people:
            print(f"  {p.name}: {p.samples} samples")
    return 0


def _change_gallery(args: argparse.Namespace, gallery) -> int:
    if args.action == "remove":
        removed = gallery.remove(args.name)
        gallery.save()
        print(f"removed {args.name} ({removed} samples)")
    elif args.action == "rename":
        gallery.rename(args.old, args.new)
        gallery.save()
        print(f"renamed {args.old} -> {args.new}")
    elif args.action == "rebuild":
        embedder = _embedder(args)
        old = gallery.model_id
        gallery.rebuild(embedder)
        gallery.save()
        print(f"rebuilt {len(gallery)} samples: model {old[:12]} -> {gallery.model_id[:12]}")
    return 0


# -- bench -------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from edge.gallery import STORED_CROP_SIZE, Gallery
    from edge.matching import Matcher
    from edge.pipeline import Recognizer
    from edge.sources import open_source

    embedder = _embedder(args)
    if args.gallery:
        gallery = Gallery.load(args.gallery)
        gallery.check_model(embedder.model_id)
    else:  # a synthetic household of 10 people x 5 samples, so matching costs what it would
        rng = np.random.default_rng(0)
        gallery = Gallery.create(
            "synthetic", embedder.model_id, embedder.input_size, embedder.embedding_size
        )
        vectors = rng.normal(size=(50, embedder.embedding_size)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        crops = np.zeros((50, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8)  # none kept
        for i in range(10):
            gallery.enroll(
                f"person{i}", crops[i * 5 : i * 5 + 5], vectors[i * 5 : i * 5 + 5], [""] * 5
            )
    recognizer = Recognizer(_detector(args), embedder, Matcher(gallery, embedder.scoring))
    frames, faces = [], 0
    stages: dict[str, list[float]] = {"detect": [], "align": [], "embed": [], "match": []}
    with open_source(args.source) as source:
        for frame in source:
            frames.append(frame)
            if len(frames) >= args.frames:
                break
    if not frames:
        raise DoorfaceError(f"{args.source}: no frames")
    for _ in range(args.warmup):
        recognizer.recognize_faces(frames[0].image, frames[0].detect_image)
    totals = []
    for i in range(args.frames):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        faces += len(recognizer.recognize_faces(frame.image, frame.detect_image))
        totals.append(time.perf_counter() - t0)
        for stage, seconds in recognizer.timings.items():
            stages[stage].append(seconds)
    h, w = frames[0].image.shape[:2]
    print(
        f"{args.frames} frames of {w}x{h} from {args.source}, detector {recognizer.detector.name}, "
        f"{args.threads} thread(s), {faces / args.frames:.2f} faces/frame"
    )
    print(f"{'stage':<8} {'median ms':>10} {'p95 ms':>8}")
    for stage, values in [*stages.items(), ("total", totals)]:
        ms = sorted(v * 1000 for v in values)
        print(f"{stage:<8} {statistics.median(ms):>10.2f} {ms[int(0.95 * (len(ms) - 1))]:>8.2f}")
    print(f"frames/s: {1.0 / statistics.median(totals):.1f}")
    return 0


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge",
        description="doorface on the device: enrol people, recognise faces, run the door daemon.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_enroll(sub)
    _add_identify(sub)
    _add_gallery(sub)
    _add_bench(sub)
    for hook in _extensions():
        hook(sub)
    return parser


def _add_enroll(sub) -> None:
    p = sub.add_parser("enroll", help="enrol a person from photos or a live source")
    p.add_argument("--gallery", required=True, help="gallery file (.npz), created if missing")
    p.add_argument("--name", required=True, help="the person's name")
    p.add_argument("paths", nargs="*", metavar="PATH", help="images or folders of images")
    p.add_argument("--source", help="camera/stream/video to capture from instead of photos")
    p.add_argument(
        "--count",
        type=bounded(int, 1),
        default=10,
        help="crops to capture from --source (default 10)",
    )
    p.add_argument(
        "--timeout",
        type=bounded(float, 0),
        default=60.0,
        help="give up capturing after this many seconds (default 60)",
    )
    p.add_argument(
        "--min-face",
        type=bounded(int, 1),
        default=40,
        help="ignore faces smaller than this (pixels, default 40)",
    )
    _add_model_options(p)
    add_detector_options(p)
    p.set_defaults(func=cmd_enroll)


def _add_identify(sub) -> None:
    p = sub.add_parser("identify", help="who is in these images")
    p.add_argument("--gallery", required=True)
    p.add_argument("paths", nargs="+", metavar="PATH", help="images or folders of images")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument(
        "--threshold",
        type=bounded(float),
        help="override the model's calibrated threshold (on its score scale: docs/MODEL.md)",
    )
    p.add_argument(
        "--margin",
        type=bounded(float, 0),
        default=0.05,
        help="best must beat runner-up by this (default 0.05)",
    )
    _add_model_options(p)
    add_detector_options(p)
    p.set_defaults(func=cmd_identify)


def _add_gallery(sub) -> None:
    p = sub.add_parser("gallery", help="list, remove, rename, rebuild")
    gsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    g = gsub.add_parser("list", help="enrolled people and sample counts")
    g.add_argument("--gallery", required=True)
    g.add_argument("--json", action="store_true")
    g = gsub.add_parser("remove", help="remove a person")
    g.add_argument("--gallery", required=True)
    g.add_argument("name")
    g = gsub.add_parser("rename", help="rename a person")
    g.add_argument("--gallery", required=True)
    g.add_argument("old")
    g.add_argument("new")
    g = gsub.add_parser("rebuild", help="re-embed the stored crops with another model")
    g.add_argument("--gallery", required=True)
    _add_model_options(g)
    p.set_defaults(func=cmd_gallery)


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="per-stage timing and frames/s on a source")
    p.add_argument("--source", required=True, help="camera index, URL, video, folder or glob")
    p.add_argument(
        "--frames", type=bounded(int, 1), default=100, help="frames to time (default 100)"
    )
    p.add_argument(
        "--warmup", type=bounded(int, 0), default=5, help="untimed frames first (default 5)"
    )
    p.add_argument(
        "--gallery", help="gallery to match against (default: a synthetic 10-person one)"
    )
    _add_model_options(p)
    add_detector_options(p)
    p.set_defaults(func=cmd_bench)


def _extensions() -> list[Callable]:
    """Subcommands that live in their own packages (the daemon, the demo, the web app)."""
    import importlib
    import importlib.util

    hooks = []
    for module in ("edge.daemon.cli", "edge.demo", "edge.web.cli"):
        if importlib.util.find_spec(module) is not None:
            hooks.append(importlib.import_module(module).add_commands)
    return hooks


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = run_command(lambda: args.func(args))
        sys.stdout.flush()  # a buffered stdout's write error shows here, not at exit
    except OSError as exc:
        if exc.filename is not None or exc.errno not in OUTPUT_ERRNOS:
            raise
        return _output_lost(exc)
    return code


#: What writing to standard output fails with: a reader that went away (`edge ... | head`),
#: a full disk or quota (`> /dev/full`), a file too large, an I/O error.
OUTPUT_ERRNOS = frozenset({errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _output_lost(exc: OSError) -> int:
    """Exit status 0 when the reader stopped reading (it has what it wanted); otherwise one
    ``error:`` line and status 2. Standard output is pointed at /dev/null first, so that the
    interpreter's own flush at exit does not fail again (the recipe in Python's signal docs)."""
    with contextlib.suppress(OSError, ValueError):  # no file behind it (a test's capture)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if isinstance(exc, BrokenPipeError):
        return 0
    print(f"error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
