"""``trainer evaluate`` end to end: the shipped int8 model on real LFW pairs it never saw."""

from __future__ import annotations

import json

import pytest

from edge.pipeline import DEFAULT_MODEL
from trainer.cli import main

pytestmark = pytest.mark.shared_data


def test_evaluate_tflite_on_lfw_reports_verification_and_one_shot(
    tmp_path, lfw_dir, pairs_dev_test, yunet_path, capsys
):
    # the first 40 same and 40 different pairs of the never-trained-on test file
    lines = pairs_dev_test.read_text().splitlines()[1:]
    same = [x for x in lines if len(x.split()) == 3][:40]
    diff = [x for x in lines if len(x.split()) == 4][:40]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join([str(len(same) + len(diff)), *same, *diff]) + "\n")
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--model", str(DEFAULT_MODEL), "--images", str(lfw_dir)]
    argv += ["--pairs", str(pairs), "--json", str(out), "--plots", str(tmp_path / "plots")]
    argv += ["--detector-model", str(yunet_path)]  # the shipped YuNet, named explicitly
    argv += ["--n-way", "20", "--trials", "300", "--per-person", "3"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "10-fold accuracy" in table and "one-shot 20-way identification" in table
    r = json.loads(out.read_text())
    assert r["pairs"] == 80 and r["pairs_skipped"] == 0
    assert r["kfold_accuracy"] >= 0.75 and r["auc"] >= 0.8  # shipped model: ~0.89 on 1,000
    o = r["one_shot"]
    assert o["people"] >= 80 and o["images"] <= 3 * o["people"]
    assert o["accuracy"] >= 0.5  # chance is 1/20
    assert (tmp_path / "plots" / "roc.png").stat().st_size > 1000


def test_one_shot_with_too_few_people_is_reported_not_fatal(tmp_path, lfw_dir, pairs_dev_test):
    lines = pairs_dev_test.read_text().splitlines()[1:]
    pairs = tmp_path / "pairs.txt"  # 12 pairs, at most 30 people
    pairs.write_text("\n".join(["12", *lines[:6], *lines[-6:]]) + "\n")
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--model", str(DEFAULT_MODEL), "--images", str(lfw_dir)]
    argv += ["--pairs", str(pairs), "--json", str(out), "--quiet"]
    assert main(argv) == 0
    o = json.loads(out.read_text())["one_shot"]
    assert o["accuracy"] is None and "100-way identification needs 100 people" in o["not_run"]
