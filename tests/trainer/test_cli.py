"""Bad input ends as one 'error: ...' line and exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from trainer.cli import main


def _run(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_help_everywhere():
    for argv in ([], ["train"], ["evaluate"], ["prune-dlib"]):
        r = subprocess.run(
            [sys.executable, "-m", "trainer.cli", *argv, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0 and "usage: trainer" in r.stdout


def test_missing_and_empty_roots(tmp_path, capsys):
    code, err = _run(
        capsys, ["train", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--quiet"]
    )
    assert code == 2 and err == [f"error: {tmp_path / 'nope'}: no such data folder"]
    (tmp_path / "empty" / "person").mkdir(parents=True)
    code, err = _run(
        capsys, ["train", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--quiet"]
    )
    assert code == 2 and len(err) == 1 and "no images in identity folders" in err[0]


def test_unreadable_images_only(tmp_path, capsys):
    (tmp_path / "r" / "ann").mkdir(parents=True)
    (tmp_path / "r" / "ann" / "a.jpg").write_bytes(b"garbage")
    code, err = _run(
        capsys,
        [
            "train",
            str(tmp_path / "r"),
            "--out",
            str(tmp_path / "o"),
            "--cache",
            str(tmp_path / "c"),
            "--quiet",
        ],
    )
    assert code == 2 and len(err) == 1 and err[0].startswith("error: no usable faces in")


def test_one_image_identities_cannot_form_batches(tmp_path, capsys, astronaut_bgr):
    for person in ("a", "b", "c"):
        (tmp_path / "r" / person).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "r" / person / "1.jpg"), astronaut_bgr)
    code, err = _run(
        capsys,
        [
            "train",
            str(tmp_path / "r"),
            "--out",
            str(tmp_path / "o"),
            "--cache",
            str(tmp_path / "c"),
            "--quiet",
            "--val-fraction",
            "0",
        ],
    )
    assert code == 2 and err == ["error: need at least P=32 identities with 2+ images, found 0"]


def test_prune_dlib_widths_are_checked_before_any_data_is_read(tmp_path, capsys):
    base = ["prune-dlib", str(tmp_path / "not-read"), "--out", str(tmp_path / "o"), "--quiet"]
    code, err = _run(capsys, [*base, "--stream", "24,x"])
    assert code == 2 and err == ["error: --stream: comma-separated channel counts, got '24,x'"]
    code, err = _run(capsys, [*base, "--stream", "40,48,96,128,128"])
    assert code == 2 and err == ["error: widths: each must be 1..32 (dlib's), got 40"]
    code, err = _run(capsys, [*base, "--middle", "16,24"])
    assert code == 2 and err == ["error: widths: 5 stages, got 5 and 2"]


def test_evaluate_wrong_model_kind(tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nAnn 1 2\n")
    for name, message in (
        ("m.onnx", "not a model this command knows"),
        ("m.keras", "cannot load as a Keras model"),
        ("m.tflite", "not a TFLite model"),
    ):
        (tmp_path / name).write_text("hello")
        code, err = _run(
            capsys,
            [
                "evaluate",
                "--model",
                str(tmp_path / name),
                "--images",
                str(tmp_path),
                "--pairs",
                str(pairs),
                "--quiet",
            ],
        )
        assert code == 2 and len(err) == 1 and message in err[0], err
    code, err = _run(
        capsys,
        [
            "evaluate",
            "--model",
            str(tmp_path / "none.keras"),
            "--images",
            str(tmp_path),
            "--pairs",
            str(pairs),
        ],
    )
    assert code == 2 and err == [f"error: {tmp_path / 'none.keras'}: no such model file"]


@pytest.mark.slow
def test_evaluate_pairs_naming_missing_images(tmp_path, capsys):
    from trainer.model import build_encoder

    build_encoder(32, 16, 0.25).save(tmp_path / "m.keras")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\nAnn 1 2\nAnn 1 Bob 3\n")
    code, err = _run(
        capsys,
        [
            "evaluate",
            "--model",
            str(tmp_path / "m.keras"),
            "--images",
            str(tmp_path / "imgs"),
            "--pairs",
            str(pairs),
            "--quiet",
        ],
    )
    assert code == 2 and len(err) == 1
    assert (
        "none of the 2 pairs has two usable images" in err[0]
        and "Ann_0001.jpg: no such file" in err[0]
    )


@pytest.mark.parametrize(
    "argv",
    [["train", "r", "--time-budget", v] for v in ("nan", "-1", "inf")]
    + [["train", "r", "--lr", v] for v in ("-1", "0", "nan")]
    + [
        ["train", "r", *a]
        for a in (
            ("--weight-decay", "nan"),
            ("--margin", "-1"),
            ("--epochs", "-1"),
            ("--epochs", "0"),
            ("--width", "0"),
            ("--warmup-steps", "-5"),
            ("--val-fraction", "-1"),
            ("--val-fraction", "1"),
            ("--staged-switch", "nan"),
            ("--threads", "-1"),
            ("--teacher-minutes", "nan"),
            ("--singletons", "-1"),
        )
    ]
    + [
        ["prune-dlib", "r", *a]
        for a in (
            ("--lr", "nan"),
            ("--relational-weight", "nan"),
            ("--bank-weight", "-0.1"),
            ("--bank-temperature", "0"),
            ("--time-budget", "nan"),
            ("--time-budget", "-1"),
            ("--trainable-stages", "-1"),
            ("--trainable-stages", "99"),
            ("--batch", "0"),
        )
    ]
    + [
        ["evaluate", "--model", "m", "--images", "i", "--pairs", "p", *a]
        for a in (("--trials", "-1"), ("--per-person", "-2"), ("--n-way", "-1"), ("--n-way", "1"))
    ],
)
def test_nonsense_numbers_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and err[-1].startswith("trainer") and argv[-2] in err[-1]


def test_recalibrate_refuses_foreign_or_broken_records(tmp_path, capsys):
    for name, text, message in (
        ("pruned", json.dumps({"config": {}}), "no 'settings' object"),
        ("empty", "{}", "no 'settings' object"),
        ("list", "[]", "no 'settings' object"),
        ("junk", "not json", "not valid JSON"),
        (
            "vf",
            json.dumps(
                {"settings": {"roots": ["r"], "val_fraction": "abc", "seed": 0, "input_size": 64}}
            ),
            "settings.val_fraction",
        ),
        ("noroots", json.dumps({"settings": {"val_fraction": 0.1}}), "settings.roots"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "training.json").write_text(text)
        code, err = _run(capsys, ["recalibrate", str(tmp_path / name), "--quiet"])
        assert code == 2 and len(err) == 1 and "training.json" in err[0] and message in err[0]
