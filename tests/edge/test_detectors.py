"""One detector: shipped YuNet by default everywhere, one [detector] table, one factory."""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pytest

from converter.yunet import OpenCVYuNet
from edge.cli import main
from edge.daemon import config
from edge.detectors import DetectorSettings, create_detector
from edge.detectors.yunet import SHIPPED_MODEL
from edge.detectors.yunet_litert import YuNetNet
from edge.errors import ConfigError, DetectorError, ModelError
from edge.manifest import DetectorRecord, ModelManifest, load_manifest, manifest_path_for
from edge.pipeline import DEFAULT_MODEL, detector_mismatch, recognizer_from_files

ROOT = Path(__file__).resolve().parents[2]

FRESH_DEFAULTS = """
import logging
from edge.detectors import create_detector
from edge.daemon.config import Config
from edge.daemon.loop import recognizer_from_config
from edge.cli import build_parser
from trainer.cli import _parser as trainer_parser
from converter.cli import _parser as converter_parser
logging.basicConfig(level=logging.WARNING)
print("factory", create_detector().record.model)
print("daemon", recognizer_from_config(Config()).detector.name)
cli = build_parser()
print("identify", cli.parse_args(["identify", "--gallery", "g", "x.jpg"]).detector)
print("demo", cli.parse_args(["demo"]).detector)
train = trainer_parser().parse_args(["train", "root"])
print("trainer", train.detector, train.detect_width)
quantize = converter_parser().parse_args(["quantize", "m.keras", "--out", "o.tflite"])
print("converter", quantize.detector, quantize.detect_width)
"""


def test_default_detector_is_shipped_yunet_in_a_fresh_process_with_no_environment():
    """No $DOORFACE_* variable, no ../shared: the factory, the daemon, the CLIs all pick the
    YuNet shipped in the package, and the shipped model's manifest names that very file (so
    the default pairing logs no detector warning)."""
    out = subprocess.run(
        [sys.executable, "-c", FRESH_DEFAULTS],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert lines == {
        "factory": "face_detection_yunet_2026may.onnx",
        "daemon": "yunet",
        "identify": "yunet",
        "demo": "yunet",
        "trainer": "yunet 0",
        "converter": "yunet 0",
    }
    assert "WARNING" not in out.stderr, out.stderr


def test_shipped_yunet_and_its_licence_are_package_data():
    """The converted TFLite file, the ONNX it was converted from, its MIT licence and its
    authors sit inside the installed ``edge`` package and are matched by pyproject's
    package-data globs (what a wheel ships); the detector is recorded as that ONNX, as the
    shipped encoder's manifest records it."""
    folder = resources.files("edge") / "models" / "yunet"
    onnx = folder / "face_detection_yunet_2026may.onnx"
    assert Path(str(folder / "face_detection_yunet_2026may.tflite")) == SHIPPED_MODEL
    assert onnx.is_file() and len(onnx.read_bytes()) > 100_000
    licence = (folder / "LICENSE").read_text()
    assert "MIT License" in licence and "Shiqi Yu" in licence
    authors = (folder / "README.md").read_text()
    assert all(name in authors for name in ("Wei Wu", "Hanyang Peng", "Shiqi Yu", "opencv_zoo"))
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["edge"]
    for name in (
        *(f"face_detection_yunet_2026may.{x}" for x in ("onnx", "tflite", "json")),
        "LICENSE",
        "README.md",
    ):
        assert any(fnmatch.fnmatch(f"models/yunet/{name}", g) for g in globs), name
    recorded = load_manifest(manifest_path_for(DEFAULT_MODEL)).detector
    assert recorded == DetectorRecord(
        "yunet", onnx.name, hashlib.sha256(onnx.read_bytes()).hexdigest()
    )
    assert create_detector().record == recorded


def test_a_converted_yunet_without_its_sidecar_is_recorded_as_itself(tmp_path):
    """Its source unknown, the file is the detector's identity (a model trained with the
    shipped one then gets the mismatch warning, as for any other detector file)."""
    bare = tmp_path / "yunet.tflite"
    bare.write_bytes(SHIPPED_MODEL.read_bytes())
    record = create_detector(DetectorSettings(model=str(bare))).record
    assert record == DetectorRecord(
        "yunet", "yunet.tflite", hashlib.sha256(bare.read_bytes()).hexdigest()
    )


def test_shipped_yunet_on_litert_finds_the_faces_opencv_finds(astronaut_bgr):
    """The converted file, decoded by edge.detectors.yunet_litert, against OpenCV's
    FaceDetectorYN on the ONNX: the same faces, boxes, landmarks and scores to float rounding,
    on the refining pass's small faces (as the 320-wide copy holds them), two faces in a frame,
    a frame of no face, and sizes that are not multiples of 32."""
    net = YuNetNet(SHIPPED_MODEL, score_threshold=0.5, nms_threshold=0.3, top_k=50)
    reference = OpenCVYuNet(SHIPPED_MODEL.with_suffix(".onnx"))
    two = np.full((480, 640, 3), 90, np.uint8)
    two[100:260, 100:260] = two[100:260, 380:540] = cv2.resize(astronaut_bgr, (160, 160))
    images = [
        cv2.resize(f, (320, f.shape[0] * 320 // f.shape[1]))
        for f, _ in _small_astronaut_frames(astronaut_bgr)
    ]
    images += [two, cv2.resize(two, (333, 250)), np.zeros((97, 131, 3), np.uint8), astronaut_bgr]
    found = 0
    for image in images:
        ours, theirs = net.detect(image), reference.detect(image)
        assert len(ours) == len(theirs)
        order = np.lexsort(theirs[:, :2].T), np.lexsort(ours[:, :2].T)
        np.testing.assert_allclose(ours[order[1]], theirs[order[0]], atol=1e-3)
        found += len(ours)
    assert found >= 12


# -- the [detector] table ----------------------------------------------------------------
def test_example_config_documents_every_detector_key():
    example = tomllib.loads((ROOT / "edge" / "config.example.toml").read_text())
    assert example["detector"] == dataclasses.asdict(DetectorSettings())
    assert "detector" not in example["recognition"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[detector]\nbackend = "yunett"', "detector.backend: must be one of yunet, haar, got"),
        ('[detector]\nbackedn = "haar"', "detector.backedn: unknown key"),
        ("[detector]\ndetect_width = -1", "detector.detect_width: must be >= 0, got -1"),
        ('[detector]\ndetect_width = "320"', "detector.detect_width: must be an integer"),
        ("[detector]\nscore_threshold = 1.5", "detector.score_threshold: must be in [0, 1]"),
        (
            '[detector]\nbackend = "haar"\nnms_threshold = 0.4',
            "detector.nms_threshold: a yunet setting, but detector.backend is 'haar'",
        ),
        ("[detector]\nrefine_eyes = true", "detector.refine_eyes: a haar setting"),
        ('[recognition]\ndetector = "yunet"', "recognition.detector: moved to detector.backend"),
        ('[recognition]\ndetector_model = "x"', "recognition.detector_model: moved to detector.m"),
    ],
)
def test_detector_table_errors_name_the_key(tmp_path, toml, message):
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        config.load(path)
    assert str(e.value).startswith(f"config.toml: {message}")
    assert "\n" not in str(e.value)


def test_check_config_rejects_a_misspelt_backend_in_one_line(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text('[detector]\nbackend = "yunett"\n')
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: config.toml: detector.backend: must be one of yunet, haar, got 'yunett'"
    ]


def test_check_config_names_a_missing_detector_model(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[detector]\nmodel = "{tmp_path / "nowhere.onnx"}"\n')
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "check-config", str(cfg)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith("error: config.toml: detector.model: file not found:")
    )


def test_a_file_that_is_not_a_cascade_is_a_one_line_detector_error(tmp_path):
    onnx = tmp_path / "cut.onnx"
    onnx.write_bytes(SHIPPED_MODEL.read_bytes()[:3000])  # OpenCV's XML parser threw on these
    jpg = tmp_path / "photo.jpg"
    cv2.imwrite(str(jpg), np.zeros((8, 8, 3), np.uint8))
    os.mkfifo(tmp_path / "pipe.xml")
    cases = [
        (onnx, "not a Haar cascade"),
        (jpg, "not a Haar cascade"),
        (tmp_path / "pipe.xml", "not a regular file (a named pipe)"),
        (tmp_path, "not a regular file (a folder)"),
        (tmp_path / "none.xml", "no such file"),
    ]
    _assert_model_errors("haar", cases)


def _assert_model_errors(backend: str, cases: list) -> None:
    """Each (detector.model path, problem) is that one-line DetectorError for ``backend``."""
    for path, problem in cases:
        with pytest.raises(DetectorError) as e:
            create_detector(DetectorSettings(backend=backend, model=str(path)))
        assert str(e.value) == f"detector.model: {path}: {problem}"


def test_a_yunet_model_that_is_not_a_converted_file_is_a_one_line_detector_error(tmp_path):
    os.mkfifo(tmp_path / "pipe.tflite")  # a loader would wait for a writer forever
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(SHIPPED_MODEL.read_bytes()[:3000])
    encoder = tmp_path / "encoder.tflite"
    encoder.write_bytes(DEFAULT_MODEL.read_bytes())
    cases = [
        (
            SHIPPED_MODEL.with_suffix(".onnx"),
            "not a TFLite file (convert it: converter import-yunet)",
        ),
        (tmp_path / "pipe.tflite", "not a regular file (a named pipe)"),
        (tmp_path, "not a regular file (a folder)"),
        (tmp_path / "none.tflite", "no such file"),
        (encoder, "not a YuNet made by import-yunet"),
    ]
    _assert_model_errors("yunet", cases)
    with pytest.raises(DetectorError, match=r"^detector.model: .*cut.tflite: cannot be loaded"):
        create_detector(DetectorSettings(model=str(cut)))


def test_factory_reads_every_setting():
    haar = create_detector(DetectorSettings(backend="haar", min_face=60, detect_width=0))
    assert haar.name == "haar" and haar.record.model == "haarcascade_frontalface_default.xml"
    assert haar.settings.min_face == 60 and haar.settings.detect_width == 0
    other = create_detector(DetectorSettings(model=str(SHIPPED_MODEL), top_k=5))
    assert other.record == create_detector().record and other.settings.top_k == 5


def _finds_face_at(settings: DetectorSettings, image, box) -> bool:
    """Whether a detected face has its centre inside ``box`` (x, y, w, h)."""
    x, y, w, h = box
    return any(
        x <= f.box[0] + f.box[2] / 2 <= x + w and y <= f.box[1] + f.box[3] / 2 <= y + h
        for f in create_detector(settings).detect(image)
    )


@pytest.mark.parametrize("backend", ["yunet", "haar"])
@pytest.mark.parametrize("width", [0, 256])
def test_min_face_is_in_frame_pixels_whatever_the_detect_width(backend, width, astronaut_bgr):
    """The astronaut's face (~90-120 px) is found with a min_face a fifth below its size and
    not with one a quarter above, for Haar (which starts its search at min_face) and YuNet,
    at full size and on a half-size copy."""
    settings = DetectorSettings(backend=backend, detect_width=width, min_face=24)
    face = create_detector(settings).detect(astronaut_bgr)[0]
    keep = dataclasses.replace(settings, min_face=int(face.size * 0.8))
    drop = dataclasses.replace(settings, min_face=int(face.size * 1.25))
    assert _finds_face_at(keep, astronaut_bgr, face.box)
    assert not _finds_face_at(drop, astronaut_bgr, face.box)


# -- the CLI options ---------------------------------------------------------------------
def test_identify_honours_detect_width(capsys, tmp_path, tiny_model, astronaut_bgr):
    """At 48 pixels wide the astronaut's face is ~8 px: YuNet cannot see it any more."""
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr)
    gallery = tmp_path / "g.npz"
    common = ["--gallery", str(gallery), "--model", str(tiny_model)]
    assert main(["enroll", *common, "--name", "Eileen", str(photo)]) == 0
    capsys.readouterr()

    def faces(*options: str) -> list:
        assert main(["identify", *common, "--json", *options, str(photo)]) == 0
        return json.loads(capsys.readouterr().out)["faces"]

    assert len(faces()) == 1
    assert len(faces("--detect-width", "0")) == 1
    assert faces("--detect-width", "48") == []


# -- the manifest's detector ---------------------------------------------------------------
def test_running_another_detector_than_the_models_logs_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="edge.pipeline"):
        recognizer_from_files(None, None, DetectorSettings(backend="haar"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "trained on faces found by yunet (face_detection_yunet_2026may.onnx)" in warnings[0]
    assert "detector is haar" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge.pipeline"):
        recognizer = recognizer_from_files(None, None, DetectorSettings(detect_width=0))
    assert caplog.records == []  # another detect_width is not another detector
    assert detector_mismatch(recognizer.detector, recognizer.embedder) is None


def test_a_manifest_without_a_detector_record_is_not_warned_about(tiny_model, caplog):
    """Manifests that predate the record (and models made from faces passed in directly)."""
    assert load_manifest(manifest_path_for(tiny_model)).detector is None
    with caplog.at_level(logging.WARNING, logger="edge.pipeline"):
        recognizer_from_files(tiny_model, None, DetectorSettings(backend="haar"))
    assert caplog.records == []


def test_detector_record_round_trips_and_names_bad_keys():
    data = json.loads(manifest_path_for(DEFAULT_MODEL).read_text())
    manifest = load_manifest(manifest_path_for(DEFAULT_MODEL))
    assert manifest.to_json()["input"]["detector"] == data["input"]["detector"]
    data["input"]["detector"] = {"backend": "yunet", "model": "x.onnx"}
    with pytest.raises(ModelError, match=r"model.json: input.detector: sha256: missing"):
        ModelManifest.from_json(data, "model.json")


# -- the refining pass ------------------------------------------------------------------------
def _small_astronaut_frames(astronaut_bgr):
    """The astronaut shrunk to a 31-63 px face in 640- and 960-wide frames (detected on a
    320-wide copy: a half or a third of the resolution), with the landmarks YuNet finds on
    the full-size photo scaled the same way as the truth."""
    truth = create_detector(DetectorSettings(detect_width=0)).detect(astronaut_bgr)[0]
    for width in (640, 960):
        for fs in (0.35, 0.45, 0.55, 0.7):
            small = cv2.resize(astronaut_bgr, None, fx=fs, fy=fs, interpolation=cv2.INTER_AREA)
            height = width * 3 // 4
            frame = np.full((height, width, 3), 90, np.uint8)
            ox, oy = width // 3, height // 4
            frame[oy : oy + small.shape[0], ox : ox + small.shape[1]] = small[
                : height - oy, : width - ox
            ]
            yield frame, truth.landmarks * fs + np.float32([ox, oy])


def test_refining_pass_halves_the_landmark_error_of_small_faces(astronaut_bgr):
    """Landmarks found on the 320-wide copy are off by ~10% of the eye distance on these
    faces; the full-resolution square around each face brings them to ~5%."""
    plain = create_detector(DetectorSettings(refine_px=0, min_face=20))
    refined = create_detector(DetectorSettings(min_face=20))
    errors = {"plain": [], "refined": []}
    for frame, truth in _small_astronaut_frames(astronaut_bgr):
        eye = float(np.linalg.norm(truth[0] - truth[1]))
        for name, detector in (("plain", plain), ("refined", refined)):
            (face,) = detector.detect(frame)
            errors[name].append(float(np.abs(face.landmarks - truth).mean()) / eye)
    assert np.mean(errors["refined"]) < 0.7 * np.mean(errors["plain"]), errors
    assert np.mean(errors["refined"]) < 0.06, errors


class _FixedNet:
    """Stands in for the refining network: ``detect`` returns no face, or raises."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def detect(self, square: np.ndarray) -> np.ndarray:
        if self.error is not None:
            raise self.error
        return np.zeros((0, 15), np.float32)


def test_refining_pass_keeps_each_face_and_what_it_cannot_improve(astronaut_bgr):
    """Two faces side by side keep their own boxes and scores and get their own landmarks; a
    face not found again in its square, and any face at full size (no copy), is returned as
    detected."""
    face = cv2.resize(astronaut_bgr, (160, 160), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:260, 100:260] = face
    frame[100:260, 380:540] = face
    refined = create_detector(DetectorSettings(min_face=20)).detect(frame)
    plain = create_detector(DetectorSettings(refine_px=0, min_face=20)).detect(frame)
    assert len(refined) == len(plain) == 2
    for r in refined:
        (p,) = [p for p in plain if abs(p.box[0] - r.box[0]) < 20]  # the same face
        assert r.box == p.box and r.score == p.score  # sizes keep their meaning
        assert np.abs(r.landmarks - p.landmarks).max() < 8  # moved by pixels, not to the other face
    blind = create_detector(DetectorSettings(min_face=20))
    blind._refine_net = _FixedNet(None)  # finds nothing in any square
    assert [f.box for f in blind.detect(frame)] == [f.box for f in plain]
    full = create_detector(DetectorSettings(detect_width=0))
    full._refine_net = _FixedNet(RuntimeError("refined a face found at full size"))
    assert len(full.detect(astronaut_bgr)) == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (DetectorSettings(refine_px=16), "detector.refine_px: must be 0 (off) or >= 32, got 16"),
        (DetectorSettings(backend="haar", refine_px=0), "detector.refine_px: a yunet setting"),
    ],
)
def test_refine_px_is_checked(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings.validate()
