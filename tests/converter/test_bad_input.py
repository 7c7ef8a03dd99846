"""Every bad input: one line ``error: ...`` on stderr, exit 2, no traceback, no output file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _run(args: list[str], capsys) -> tuple[int, str]:
    from converter.cli import main

    argv = [str(a) for a in args]
    if argv[0] == "quantize" and "--quiet" not in argv:
        argv.append("--quiet")  # progress bars share stderr; the error line must stand alone
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


def _assert_clean_failure(rc: int, err: str, out_dir: Path, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    if out_dir.exists():
        assert sorted(p.name for p in out_dir.iterdir() if p.suffix != ".keras") == []


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory) -> Path:
    from tests.model_factory import build_tiny_encoder

    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    build_tiny_encoder(32).save(path)
    return path


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory, astronaut_bgr: np.ndarray) -> Path:
    import cv2

    folder = tmp_path_factory.mktemp("faces") / "eileen"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), np.roll(astronaut_bgr, 3 * i, axis=1))
    return folder.parent


def test_not_a_keras_model(tmp_path: Path, face_folder: Path, capsys) -> None:
    fake = tmp_path / "model.keras"
    fake.write_text("definitely not a zip")
    out = tmp_path / "out"
    out.mkdir()
    rc, err = _run(
        ["quantize", fake, "--calibration", face_folder, "--out", out / "m.tflite"], capsys
    )
    _assert_clean_failure(rc, err, out, "model.keras", "not a loadable Keras model")
    rc, err = _run(
        [
            "quantize",
            tmp_path / "missing.keras",
            "--calibration",
            face_folder,
            "--out",
            out / "m.tflite",
        ],
        capsys,
    )
    _assert_clean_failure(rc, err, out, "no such model file")
    weights = tmp_path / "model.h5"
    weights.write_bytes(b"\x89HDF\r\n")
    rc, err = _run(
        ["quantize", weights, "--calibration", face_folder, "--out", out / "m.tflite"], capsys
    )
    _assert_clean_failure(rc, err, out, "not a Keras model")


@pytest.mark.parametrize(
    ("kind", "needle"),
    [("rect_input", "input shape"), ("grey_input", "input shape"), ("map_output", "output shape")],
)
def test_unexpected_shapes(kind: str, needle: str, tmp_path: Path, face_folder, capsys) -> None:
    import keras

    shape = {"rect_input": (32, 48, 3), "grey_input": (32, 32, 1)}.get(kind, (32, 32, 3))
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, strides=2)(inputs)
    if kind != "map_output":
        x = keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path / f"{kind}.keras"
    keras.Model(inputs, x).save(path)
    rc, err = _run(
        ["quantize", path, "--calibration", face_folder, "--out", tmp_path / "m.tflite"], capsys
    )
    _assert_clean_failure(rc, err, tmp_path, needle)


def test_empty_calibration_folder(tiny_keras: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    rc, err = _run(
        ["quantize", tiny_keras, "--calibration", empty, "--out", out / "m.tflite"], capsys
    )
    _assert_clean_failure(rc, err, out, "holds no image")
    rc, err = _run(
        ["quantize", tiny_keras, "--calibration", tmp_path / "nope", "--out", out / "m.tflite"],
        capsys,
    )
    _assert_clean_failure(rc, err, out, "no such folder")


def test_faceless_calibration_folder(tiny_keras: Path, tmp_path: Path, capsys) -> None:
    import cv2

    folder = tmp_path / "walls" / "nobody"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((120, 160, 3), 40 * i + 30, np.uint8))
    cv2.imwrite(str(folder / "noise.png"), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    out.mkdir()
    rc, err = _run(
        ["quantize", tiny_keras, "--calibration", folder.parent, "--out", out / "m.tflite"],
        capsys,
    )
    _assert_clean_failure(rc, err, out, "no face found in 6 image(s)")


def test_output_path_not_writable(tiny_keras: Path, face_folder: Path, tmp_path: Path, capsys):
    for target, needle in [
        (tmp_path / "no" / "such" / "dir" / "m.tflite", "output folder does not exist"),
        (tmp_path, "output must end in .tflite"),
        (Path("/proc/m.tflite"), "cannot write"),
    ]:
        rc, err = _run(
            ["quantize", tiny_keras, "--calibration", face_folder, "--out", target], capsys
        )
        _assert_clean_failure(rc, err, tmp_path / "none", needle)
    directory = tmp_path / "isdir.tflite"
    directory.mkdir()
    rc, err = _run(
        ["quantize", tiny_keras, "--calibration", face_folder, "--out", directory], capsys
    )
    _assert_clean_failure(rc, err, tmp_path / "none", "is a folder")


def test_conversion_with_float_ops_is_refused(tmp_path: Path, face_folder: Path, capsys):
    """Keras' UnitNormalization silently leaves a float SQUARE island: quantize must refuse."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path / "unitnorm.keras"
    keras.Model(inputs, keras.layers.UnitNormalization()(x)).save(path)
    out = tmp_path / "out"
    out.mkdir()
    rc, err = _run(
        [
            "quantize",
            path,
            "--calibration",
            face_folder,
            "--out",
            out / "m.tflite",
            "--threshold",
            "0.5",
            "--quiet",
        ],
        capsys,
    )
    _assert_clean_failure(rc, err, out, "not full-integer int8", "SQUARE")


def test_failure_late_in_the_pipeline_leaves_old_outputs_untouched(
    tiny_keras: Path, face_folder: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """An error after conversion (here: no threshold anywhere) keeps the previous files intact
    and leaves no temporary behind."""
    out = tmp_path / "m.tflite"
    out.write_bytes(b"old model")
    out.with_suffix(".json").write_text("{}")
    rc, err = _run(
        ["quantize", tiny_keras, "--calibration", face_folder, "--out", out, "--quiet"], capsys
    )
    assert rc == 2 and err.startswith("error: no threshold")
    assert out.read_bytes() == b"old model"
    assert out.with_suffix(".json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.tflite"]


def test_bad_threshold_and_mode(tiny_keras: Path, face_folder: Path, tmp_path: Path, capsys):
    rc, err = _run(
        [
            "quantize",
            tiny_keras,
            "--calibration",
            face_folder,
            "--out",
            tmp_path / "m.tflite",
            "--threshold",
            "1.5",
        ],
        capsys,
    )
    _assert_clean_failure(rc, err, tmp_path, "--threshold")
    rc, err = _run(["check", tmp_path / "nothing.tflite"], capsys)
    _assert_clean_failure(rc, err, tmp_path, "no such file")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    rc, err = _run(["check", junk], capsys)
    assert rc == 2 and "not a TFLite model" in err
