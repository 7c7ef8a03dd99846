"""Fast bad-input checks of the converter CLI: one line ``error: ...``, exit 2, nothing written
(the fuzzer's cases: odd numbers, unwritable --json, binary pair files, pipes, folders where a
file goes, a failed fit that must not touch the model's files)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from converter.cli import main
from converter.errors import ConverterError
from edge.errors import DoorfaceError

SMALL = Path(__file__).resolve().parents[2] / "edge" / "models" / "doorface-small.tflite"


def _one_line_failure(argv: list, capsys, *needles: str) -> str:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _usage_failure(argv: list, capsys, needle: str) -> None:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and needle in err, err


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """The shipped small model (its file names kept: the manifest names its cohort) with its manifest and cohort, copied to tmp_path."""
    for suffix in (".tflite", ".json", ".cohort.npy"):
        shutil.copy(SMALL.with_suffix(suffix), tmp_path / f"{SMALL.stem}{suffix}")
    return tmp_path / SMALL.name


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.bin"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def test_check_json_path_that_cannot_be_written(model: Path, tmp_path: Path, capsys) -> None:
    regular = tmp_path / "regfile"
    regular.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    for target, needle in [
        (regular / "x.json", "not a folder"),
        (tmp_path / "nodir" / "x.json", "folder does not exist"),
        (folder, "is a folder"),
    ]:
        _one_line_failure(["check", model, "--json", target], capsys, str(target), needle)
    assert sorted(p.name for p in folder.iterdir()) == []


def test_compare_json_and_pairs_refused_before_the_work(tmp_path: Path, capsys) -> None:
    keras, tflite = tmp_path / "e.keras", tmp_path / "m.tflite"
    base = ["compare", keras, tflite, "--images", tmp_path]
    _one_line_failure([*base, "--json", tmp_path / "nodir" / "c.json"], capsys, "c.json")
    _one_line_failure([*base, "--json", tmp_path], capsys, "is a folder")
    binary = _binary(tmp_path)
    _one_line_failure([*base, "--pairs", binary], capsys, "--pairs", str(binary), "not UTF-8")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_check_refuses_a_named_pipe_instead_of_hanging(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "fifo.tflite"
    os.mkfifo(fifo)
    _one_line_failure(["check", fifo], capsys, str(fifo), "not a regular file")
    _one_line_failure(["check", tmp_path], capsys, "not a regular file")


@pytest.mark.parametrize(
    "option, value",
    [
        ("--max-images", "0"),
        ("--tolerance-mean", "nan"),
        ("--tolerance-p1", "-1"),
        ("--tolerance-decisions", "inf"),
        ("--tolerance-accuracy-drop", "nan"),
    ],
)
def test_compare_numbers_are_bounded(option: str, value: str, tmp_path: Path, capsys) -> None:
    argv = ["compare", "e.keras", "m.tflite", "--images", tmp_path, option, value]
    _usage_failure(argv, capsys, f"argument {option}:")


@pytest.mark.parametrize(
    "option, value",
    [
        ("--top-k", "0"),
        ("--top-k", "-3"),
        ("--val-fraction", "nan"),
        ("--val-fraction", "inf"),
        ("--val-fraction", "-0.5"),
        ("--seed", "-1"),
        ("--stranger-rate", "nan"),
    ],
)
def test_operating_point_numbers_are_bounded(option: str, value: str, model: Path, capsys):
    before = model.with_suffix(".json").read_bytes()
    _usage_failure(["operating-point", model, model.parent, option, value], capsys, option)
    assert model.with_suffix(".json").read_bytes() == before


@pytest.mark.parametrize("option, value", [("--samples", "0"), ("--seed", "-1")])
def test_quantize_numbers_are_bounded(option: str, value: str, tmp_path: Path, capsys) -> None:
    argv = ["quantize", "e.keras", "--out", tmp_path / "m.tflite", option, value]
    _usage_failure(argv, capsys, f"argument {option}:")


def test_operating_point_binary_exclude_pairs(model: Path, capsys) -> None:
    before = model.with_suffix(".json").read_bytes()
    binary = _binary(model.parent)
    argv = ["operating-point", model, model.parent, "--exclude-pairs", binary]
    _one_line_failure(argv, capsys, "--exclude-pairs", str(binary))
    assert model.with_suffix(".json").read_bytes() == before


def _fake_op(model: Path, *, a: float, cohort: bool = True):
    from converter.operating_point import OperatingPoint
    from edge.scoring import CohortRecord

    rng = np.random.default_rng(0)
    templates = rng.normal(size=(5, 128)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    record = CohortRecord("", "", 5, 2, 0.1, "test")
    return OperatingPoint(
        0.5,
        {
            "kind": "logistic",
            "a": a,
            "b": -5.0,
            "fitted_on": "test",
            "pairs": {"same": 9, "different": 9},
        },
        {"household": {"threshold": 0.5}},
        templates if cohort else None,
        record if cohort else None,
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("had_cohort", [True, False])
def test_failed_fit_leaves_model_files_untouched(model: Path, had_cohort: bool) -> None:
    """A fit the manifest refuses (negative confidence slope) writes nothing: the old cohort
    stays (the model keeps passing its sha256) and no stray cohort appears."""
    from converter.operating_point import write_operating_point
    from edge.embedder import Embedder

    if not had_cohort:
        model.with_suffix(".cohort.npy").unlink()
    before = _snapshot(model.parent)
    with pytest.raises(DoorfaceError, match="confidence: a: must be"):
        write_operating_point(model, _fake_op(model, a=-4.5))
    assert _snapshot(model.parent) == before
    if had_cohort:
        assert Embedder(model).scoring.cohort is not None  # still loads, sha256 intact


def test_write_operating_point_round_trip_and_cohort_folder(model: Path) -> None:
    from converter.operating_point import write_operating_point
    from edge.manifest import load_manifest

    manifest = write_operating_point(model, _fake_op(model, a=13.0))
    assert manifest.cohort is not None and manifest.cohort.file == "doorface-small.cohort.npy"
    assert load_manifest(model.with_suffix(".json")).cohort == manifest.cohort
    cohort = model.with_suffix(".cohort.npy")
    cohort.unlink()
    cohort.mkdir()
    before = _snapshot(model.parent)
    with pytest.raises(ConverterError, match=r"doorface-small\.cohort\.npy: not a regular file"):
        write_operating_point(model, _fake_op(model, a=13.0))
    assert _snapshot(model.parent) == before and cohort.is_dir()


def test_quantize_refuses_a_folder_where_the_manifest_goes(tmp_path: Path) -> None:
    from converter.pipeline import check_output_path

    (tmp_path / "b.json").mkdir()
    with pytest.raises(ConverterError, match=r"b\.json: is a folder"):
        check_output_path(tmp_path / "b.tflite")
    assert not (tmp_path / "b.tflite").exists()


def test_main_safety_net_names_the_file(monkeypatch, capsys) -> None:
    import converter.cli as cli

    def boom(args):
        raise NotADirectoryError(20, "Not a directory", "/x/regfile/.c.json.tmp")

    monkeypatch.setattr(cli, "cmd_check", boom)
    line = _one_line_failure(["check", "m.tflite"], capsys)
    assert line == "error: /x/regfile/.c.json.tmp: Not a directory"


def test_partition_warning_says_what_a_split_graph_costs() -> None:
    from collections import Counter

    from converter.cli import partition_warning
    from converter.inspect import Delegation

    pools = partition_warning(Delegation(partitions=5, undelegated=Counter()))
    assert "XNNPACK partitions: 5" in pools and "only weightless ops" in pools
    prelu = partition_warning(Delegation(partitions=3, undelegated=Counter(PRELU=2)))
    assert "PRELU x2" in prelu and "ops with weights on slower kernels" in prelu
