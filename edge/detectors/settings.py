"""The one detector configuration: the daemon's ``[detector]`` table and every CLI's options.

:class:`DetectorSettings` is read from TOML by :mod:`edge.daemon.config`, built from
``--detector / --detector-model / --detect-width`` by :func:`settings_from_args` in ``edge``,
``trainer`` and ``converter``, and turned into a detector by
:func:`edge.detectors.create_detector`. Errors name the real key (``detector.backend``).

Defaults: YuNet, shipped inside the package, on a copy downscaled to 320 pixels wide (a
640x480 frame in ~3 ms on one x86 core, on LiteRT). The trainer and the converter use the same settings with
``detect_width = 0`` (:data:`TRAINING_DETECTOR`): their photos are small (LFW is 250x250), and
every landmark should be as precise as possible, since alignment errors become training noise.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from edge.errors import ConfigError

BACKENDS = ("yunet", "haar")

#: Keys that only one backend reads; setting one of them for the other backend is an error.
BACKEND_KEYS = {
    "yunet": ("nms_threshold", "top_k", "refine_px"),
    "haar": ("scale_factor", "min_neighbors", "refine_eyes"),
}


@dataclass(frozen=True)
class DetectorSettings:
    #: yunet: 5 real landmarks, ~3 ms per 640x480 frame (LiteRT; 6 on OpenCV's DNN module,
    #: which ran it until 2026-12-07). haar: the explicit fallback; boxes
    #: only, landmarks placed from the box, so alignment is coarser (edge/detectors/haar.py).
    backend: str = "yunet"
    #: The backend's model file: a YuNet converted by ``converter import-yunet`` (.tflite) or a
    #: Haar cascade XML. "" = the one shipped (edge/models/yunet/face_detection_yunet_2026may
    #: .tflite, from opencv_zoo's ONNX beside it; OpenCV's frontal-face cascade).
    model: str = ""
    #: Detect on a copy downscaled to at most this width (0: full size). Speed for recall:
    #: YuNet loses faces narrower than ~10 px in the copy (the astronaut's face is found at
    #: 11 px, lost at 8), Haar those under 24 px (its cascade's window).
    detect_width: int = 320
    #: Faces whose box is narrower than this many frame pixels are dropped. Haar's search
    #: starts at this size, so it sets Haar's speed: on 640x480 frames detected at 320 wide,
    #: 40 px took 31 ms and 80 px 18 ms, but 80 px found a face in 5% of frames with 35-70 px
    #: faces against 62% (2 loaded cores). YuNet's speed does not depend on it.
    min_face: int = 40
    #: YuNet: its face confidence. Haar: n / (n + min_neighbors), n = supporting detections.
    score_threshold: float = 0.6
    #: yunet only: overlap above which the weaker of two boxes is suppressed.
    nms_threshold: float = 0.3
    #: yunet only: candidates kept before suppression.
    top_k: int = 50
    #: yunet only: when detection ran on a downscaled copy, each face found there is detected
    #: again in a square of the full frame around it (twice the face's side), resized to this
    #: many pixels, and takes its landmarks from there; its box stays, so sizes keep their
    #: meaning (0: off). Landmarks found at half resolution misalign small faces; this pass
    #: costs ~1 ms per face where detecting the whole frame at full size costs ~7x the
    #: downscaled detection (docs/BENCHMARKS.md, "Landmarks at full resolution").
    refine_px: int = 160
    #: haar only: 1.2 / 3 neighbours took 12 ms per frame at recall 0.983, against 28 ms at
    #: 0.990 for 1.1 / 5 (benchmarks/frames.py door frames searched from 80 px, 300 LFW photos).
    scale_factor: float = 1.2
    #: haar only.
    min_neighbors: int = 3
    #: haar only: place the eyes with OpenCV's eye cascade instead of from the box. Worse on
    #: upright LFW faces (landmark error 0.148 vs 0.135 of the eye distance); may help tilts.
    refine_eyes: bool = False

    def validate(self) -> DetectorSettings:
        """Raise ConfigError naming the key (``detector.backend: ...``); return self."""
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"detector.backend: must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        defaults = DetectorSettings()
        for backend, keys in BACKEND_KEYS.items():
            for key in keys:
                if backend != self.backend and getattr(self, key) != getattr(defaults, key):
                    raise ConfigError(
                        f"detector.{key}: a {backend} setting, but detector.backend is "
                        f"{self.backend!r}"
                    )
        checks = [
            ("detect_width", self.detect_width >= 0, ">= 0"),
            ("min_face", self.min_face >= 1, ">= 1"),
            ("score_threshold", 0.0 <= self.score_threshold <= 1.0, "in [0, 1]"),
            ("nms_threshold", 0.0 < self.nms_threshold <= 1.0, "in (0, 1]"),
            ("top_k", self.top_k >= 1, ">= 1"),
            ("refine_px", self.refine_px == 0 or self.refine_px >= 32, "0 (off) or >= 32"),
            ("scale_factor", self.scale_factor > 1.0, "> 1"),
            ("min_neighbors", self.min_neighbors >= 1, ">= 1"),
        ]
        for key, ok, rule in checks:
            if not ok:
                raise ConfigError(f"detector.{key}: must be {rule}, got {getattr(self, key)!r}")
        return self


#: The trainer's and the converter's default: the same shipped YuNet, on the whole photo.
TRAINING_DETECTOR = DetectorSettings(detect_width=0)


def add_detector_options(
    parser: argparse.ArgumentParser, defaults: DetectorSettings = DetectorSettings()
) -> None:
    """``--detector``, ``--detector-model``, ``--detect-width``: the same three options in
    ``edge``, ``trainer`` and ``converter``; ``defaults`` is the tool's (its detect_width)."""
    group = parser.add_argument_group("face detector (the daemon's [detector] table)")
    group.add_argument(
        "--detector",
        choices=BACKENDS,
        default=defaults.backend,
        help="yunet (default, shipped) or haar (fallback: coarser landmarks)",
    )
    group.add_argument(
        "--detector-model",
        default=defaults.model,
        metavar="FILE",
        help="detector.model: YuNet .tflite (converter import-yunet) or Haar cascade .xml "
        "(default: the shipped one)",
    )
    group.add_argument(
        "--detect-width",
        type=int,
        default=defaults.detect_width,
        metavar="PX",
        help=f"detect on a copy at most this wide; 0 = full size (default {defaults.detect_width})",
    )


def settings_from_args(args: argparse.Namespace) -> DetectorSettings:
    """The settings the options of :func:`add_detector_options` describe, validated."""
    return DetectorSettings(
        backend=args.detector, model=args.detector_model, detect_width=args.detect_width
    ).validate()
