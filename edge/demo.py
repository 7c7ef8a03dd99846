"""``edge demo``: the real pipeline end to end with no camera, broker or data.

A short door-camera clip is composed from faces that ship inside installed packages
(scikit-image's astronaut, Eileen Collins, is the enrolled person; matplotlib's Grace Hopper
and two of scikit-image's small LFW crops are strangers). The astronaut is enrolled from a few variants of
her photo, then the daemon's own loop (tracker, decisions, cooldown) runs over the clip and
the events it would publish are printed as JSON lines, followed by a summary. With
``--data DIR`` (a folder per person), real photos are used instead: the person with the most
photos is enrolled from half of them and visits with the others; two other people are strangers.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edge.daemon.sinks import StdoutSink
from edge.detectors.settings import DetectorSettings, add_detector_options, settings_from_args
from edge.errors import DoorfaceError, ImageError
from edge.image import IMAGE_SUFFIXES, load_image
from edge.sources import Frame

if TYPE_CHECKING:
    from edge.gallery import Gallery
    from edge.pipeline import Recognizer

WIDTH, HEIGHT, FPS = 640, 480, 10.0

log = logging.getLogger(__name__)


@dataclass
class Visitor:
    name: str | None  # the enrolled name, or None for a stranger
    photos: list[np.ndarray]  # BGR photos of this person (one is used per visit)


# -- the clip ------------------------------------------------------------------------------
def scene(rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A smooth, door-like background: warm low-saturation gradients plus blurred texture."""
    base = rng.uniform(70, 190, size=(6, 8, 1)).astype(np.float32) * np.array(
        [0.75, 0.88, 1.0], np.float32
    )
    image = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 12, size=(height, width, 1)).astype(np.float32).repeat(3, axis=2)
    return np.clip(image + cv2.GaussianBlur(noise, (0, 0), 3), 0, 255).astype(np.uint8)


def paste(frame: np.ndarray, photo: np.ndarray, cx: float, cy: float, side: int) -> None:
    """Blend a square photo into the frame through a feathered ellipse (no hard edges)."""
    photo = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(
        mask, (side // 2, side // 2), (int(side * 0.38), int(side * 0.47)), 0, 0, 360, 1.0, -1
    )
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, side * 0.04))[..., None]
    x0, y0 = int(cx - side / 2), int(cy - side / 2)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(frame.shape[1], x0 + side), min(frame.shape[0], y0 + side)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    region = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    roi = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    m = mask[region]
    frame[fy0:fy1, fx0:fx1] = (roi * (1 - m) + photo[region].astype(np.float32) * m).astype(
        np.uint8
    )


def face_square(photo: np.ndarray, detector) -> np.ndarray:
    """The photo cropped to a square around its largest face (2.2x the face box)."""
    faces = detector.detect(photo)
    if not faces:
        return photo
    x, y, w, h = faces[0].box
    side = int(2.2 * max(w, h))
    cx, cy = x + w / 2, y + h / 2.2
    pad = side
    padded = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    x0, y0 = int(cx - side / 2) + pad, int(cy - side / 2) + pad
    return padded[y0 : y0 + side, x0 : x0 + side]


def build_clip(
    visitors: list[Visitor], detector, seed: int = 0, gap: int = 8, visit: int = 24
) -> list[Frame]:
    """Empty door, then each visitor walking up to the camera (growing, drifting, lit
    differently), with empty frames between visits. Timestamps advance at 10 frames/s."""
    rng = np.random.default_rng(seed)
    background = scene(rng)
    frames: list[np.ndarray] = [background.copy() for _ in range(gap)]
    for i, visitor in enumerate(visitors):
        photo = face_square(visitor.photos[i % len(visitor.photos)], detector)
        start_x = rng.uniform(180, 460)
        for k in range(visit):
            t = k / max(1, visit - 1)
            frame = background.copy()
            side = int(170 + 130 * t)  # approaching the door
            cx = start_x + (WIDTH / 2 - start_x) * t
            gain = rng.uniform(0.85, 1.15)
            lit = np.clip(photo.astype(np.float32) * gain, 0, 255).astype(np.uint8)
            paste(frame, lit, cx, HEIGHT * 0.45, side)
            frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
            frames.append(frame)
        frames.extend(background.copy() for _ in range(gap))
    t0 = time.time()
    return [Frame(f, t0 + i / FPS, i, "demo") for i, f in enumerate(frames)]


# -- faces that ship with packages ---------------------------------------------------------
def packaged_faces() -> tuple[np.ndarray, list[np.ndarray]]:
    """(astronaut, [strangers]) as BGR images: scikit-image's astronaut; strangers are
    matplotlib's Grace Hopper (when matplotlib is installed) and two of scikit-image's tiny
    grey LFW crops (25 px, upscaled: a distant, soft face)."""
    try:
        import skimage.data
    except ImportError:
        raise DoorfaceError("edge demo needs scikit-image: pip install 'doorface[demo]'") from None
    astronaut = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    strangers = []
    try:
        import matplotlib.cbook

        hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        strangers.append(load_image(hopper))
    except (ImportError, OSError, ValueError, ImageError):
        pass
    tiny = skimage.data.lfw_subset()  # 100 faces then 100 non-faces, 25x25 floats in [0, 1]
    for index in (1, 2):
        face = cv2.resize(
            (tiny[index] * 255).astype(np.uint8), (130, 130), interpolation=cv2.INTER_CUBIC
        )
        strangers.append(
            cv2.copyMakeBorder(
                cv2.cvtColor(face, cv2.COLOR_GRAY2BGR), 80, 80, 80, 80, cv2.BORDER_REPLICATE
            )
        )
    return astronaut, strangers


def variants(photo: np.ndarray, n: int, seed: int = 0) -> list[np.ndarray]:
    """Enrolment variants of one photo: mirrored, re-lit, slightly rotated."""
    rng = np.random.default_rng(seed)
    out = [photo]
    h, w = photo.shape[:2]
    for i in range(1, n):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), rng.uniform(0.9, 1.1))
        v = cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        v = np.clip(v.astype(np.float32) * rng.uniform(0.75, 1.2) + rng.uniform(-15, 15), 0, 255)
        out.append(v.astype(np.uint8)[:, ::-1] if i % 2 else v.astype(np.uint8))
    return out


def photo_paths(folder: Path) -> list[Path]:
    """The image files in one person's folder, by name (DoorfaceError if it cannot be listed)."""
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as exc:
        raise DoorfaceError(f"--data: {folder}: cannot list ({exc.strerror or exc})") from None


def photos_from(folder: Path, limit: int | None = None) -> list[np.ndarray]:
    """Up to ``limit`` readable photos of the folder; unreadable ones are skipped."""
    images = []
    for path in photo_paths(folder):
        try:
            images.append(load_image(path))
        except ImageError as exc:
            log.info("skipped %s", exc)
            continue
        if len(images) == limit:
            break
    return images


def data_visitors(root: Path) -> tuple[str, list[np.ndarray], list[Visitor]]:
    """From a folder-per-person root: the person with most photos, enrolled from half of them,
    and the next two people with a readable photo as strangers."""
    try:
        folders = [p for p in root.iterdir() if p.is_dir()]
    except OSError as exc:
        raise DoorfaceError(f"--data: {root}: cannot list ({exc.strerror or exc})") from None
    counts = {p: len(photo_paths(p)) for p in folders}
    people = sorted(folders, key=lambda p: (-counts[p], p.name))
    if len(people) < 3 or counts[people[0]] < 4:
        raise DoorfaceError(
            f"{root}: --data needs a folder per person, 3+ people, one with 4+ photos"
        )
    host = photos_from(people[0])
    if len(host) < 2:
        raise DoorfaceError(f"--data: {people[0]}: fewer than 2 readable photos")
    half = len(host) // 2
    strangers = _strangers(people[1:])
    name = people[0].name
    return (
        name,
        host[:half],
        [Visitor(name, host[half:]), *strangers, Visitor(name, host[half:][::-1])],
    )


def _strangers(folders: list[Path], count: int = 2) -> list[Visitor]:
    """The first ``count`` people with a readable photo (one each); the others are skipped."""
    strangers = []
    for folder in folders:
        photos = photos_from(folder, limit=1)
        if not photos:
            log.warning("%s: no readable photo; skipped", folder)
            continue
        strangers.append(Visitor(None, photos))
        if len(strangers) == count:
            return strangers
    raise DoorfaceError(f"--data: fewer than {count} other people with a readable photo")


# -- running it ----------------------------------------------------------------------------
class CollectingSink(StdoutSink):
    """The daemon's stdout sink (JSON lines, as ``edge run`` prints them) that keeps the events."""

    def __init__(self, quiet: bool = False) -> None:
        super().__init__(io.StringIO() if quiet else None)
        self.events: list[dict[str, Any]] = []

    def send_event(self, ev: dict[str, Any]) -> None:
        self.events.append(ev)
        super().send_event(ev)


def run_demo(
    data: Path | None = None,
    model: str | None = None,
    detector_settings: DetectorSettings | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Enrol, build the clip, run the daemon loop; returns the events and a summary."""
    from edge.daemon.config import Config
    from edge.daemon.grabber import HandFed
    from edge.daemon.loop import Daemon, recognizer_from_config

    started = time.perf_counter()
    cfg = Config()  # the daemon's defaults: model, detector, flip, exposure, decisions
    cfg.recognition.model = str(model or "")
    if detector_settings is not None:
        cfg.detector = detector_settings
    recognizer = recognizer_from_config(cfg)  # what `edge run` builds from the same config
    detector, embedder = recognizer.detector, recognizer.embedder
    if data is None:
        astronaut, strangers = packaged_faces()
        name, enrol_photos = "Eileen Collins", variants(astronaut, 5)
        visitors = [
            Visitor(name, [astronaut]),
            *(Visitor(None, [s]) for s in strangers),
            Visitor(name, [astronaut]),
        ]
    else:
        name, enrol_photos, visitors = data_visitors(data)

    with tempfile.TemporaryDirectory(prefix="doorface-demo-") as tmp:
        gallery, enrolled = _demo_gallery(Path(tmp) / "gallery.npz", name, enrol_photos, recognizer)
        clip = build_clip(visitors, detector)
        cfg.recognition.gallery = str(gallery.path)
        cfg.camera.name = "demo_door"
        cfg.snapshot.enabled = False
        # The clip plays faster than real time and cooldowns run on the wall clock: keep the
        # person cooldown (the second visit shows it) but let each stranger be reported.
        cfg.cooldown.unknown_s = 0.0
        sink = CollectingSink(quiet)
        recognizer.set_matcher(recognizer.matcher.with_gallery(gallery))
        daemon = Daemon(cfg, recognizer=recognizer, sink=sink, grabber=HandFed())
        loop_started = time.perf_counter()
        for frame in clip:
            daemon.handle_frame(frame)
        daemon.shutdown()
        loop_seconds = time.perf_counter() - loop_started

    counts = Counter(e["type"] for e in sink.events)
    summary = {
        "enrolled": name,
        "enrolment_crops": enrolled,
        "visits": [v.name or "stranger" for v in visitors],
        "frames": len(clip),
        "events": dict(counts),
        "recognized": [e["person"] for e in sink.events if e["type"] == "recognized"],
        "detector": detector.name,
        "model": embedder.path.name,
        "threshold": embedder.scoring.threshold,
        "loop_frames_per_s": round(len(clip) / loop_seconds, 1),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return {"events": sink.events, "summary": summary}


def _demo_gallery(
    path: Path, name: str, photos: list[np.ndarray], recognizer: Recognizer
) -> tuple[Gallery, int]:
    """A gallery at ``path`` with ``name`` enrolled from ``photos`` as ``edge enroll`` would;
    and how many of them gave a face. DoorfaceError if none did."""
    from edge.enroll import EnrolResult, add_enrolment_face
    from edge.gallery import Gallery

    detector, embedder = recognizer.detector, recognizer.embedder
    gallery = Gallery.create(path, embedder.model_id, embedder.input_size, embedder.embedding_size)
    found = EnrolResult()
    for i, photo in enumerate(photos):
        add_enrolment_face(
            found,
            f"enrolment photo {i + 1}",
            photo,
            detector,
            embedder.input_size,
            preprocessing=embedder.preprocessing,
            source="demo",
        )
    if not found.crops:
        raise DoorfaceError(f"demo: no face found in the enrolment photos of {name}")
    gallery.enroll(
        name, np.stack(found.stored_crops), embedder.embed(np.stack(found.crops)), found.sources
    )
    gallery.save()
    return gallery, len(found.crops)


def cmd_demo(args: argparse.Namespace) -> int:
    result = run_demo(args.data, args.model, settings_from_args(args), quiet=args.quiet)
    s = result["summary"]
    print(
        f"\ndemo: enrolled {s['enrolled']} ({s['enrolment_crops']} crops); {len(s['visits'])} visits "
        f"({', '.join(s['visits'])}) in {s['frames']} frames; detector {s['detector']}, model {s['model']} "
        f"(threshold {s['threshold']:.3f})",
        file=sys.stderr,
    )
    print(
        f"demo: {sum(s['events'].values())} events: {s['events']}; recognized {s['recognized']}; "
        f"loop {s['loop_frames_per_s']} frames/s; {s['seconds']} s in all",
        file=sys.stderr,
    )
    return 0


def data_folder(text: str) -> Path:
    """``--data``: an existing folder (argparse's one-line error otherwise)."""
    path = Path(text)
    if not path.is_dir():
        problem = "not a folder" if path.exists() else "no such folder"
        raise argparse.ArgumentTypeError(f"{text}: {problem}")
    return path


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the whole pipeline on a built-in clip (no camera, broker or data)"
    )
    p.add_argument("--data", type=data_folder, help="a folder per person: use real photos instead")
    p.add_argument("--model", help="encoder .tflite (default: the shipped model)")
    p.add_argument("--quiet", action="store_true", help="summary only, no event lines")
    add_detector_options(p)
    p.set_defaults(func=cmd_demo)
