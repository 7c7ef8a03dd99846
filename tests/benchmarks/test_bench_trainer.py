"""bench_trainer keeps each reported run as a small summary and rebuilds the report from them."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_trainer as bt

EVAL = {
    "kfold_accuracy": 0.81,
    "kfold_std": 0.02,
    "accuracy_at_threshold": 0.8,
    "threshold": 0.41,
    "auc": 0.88,
    "eer": 0.2,
    "tar_at_far_1e-2": 0.3,
    "tar_at_far_1e-3": 0.1,
    "one_shot": {"accuracy": 0.25},
    "pairs": 1000,  # not kept in the summary
}


def _run(tmp_path, name, minutes, teacher="none"):
    run = tmp_path / "runs" / name
    run.mkdir(parents=True)
    history = [
        {
            "epoch": e,
            "step": 200 * e,
            "minutes": minutes * e / 2,
            "images_per_s": ips,
            "pairs_acc": 0.7 + 0.05 * e,
            "val_acc": 0.7,
            "active_triplets": 0.9,
            "loss": 0.1,
        }
        for e, ips in ((1, 100.0), (2, 150.0))
    ]
    record = {
        "settings": {
            "loss": "semihard",
            "teacher": teacher,
            "head": "none",
            "threads": 2,
            "input_size": 64,
            "width": 1.0,
            "teacher_margin_max": 0.5 if teacher != "none" else 0.0,
        },
        "model": {"params": 632512},
        "train_minutes": minutes,
        "history": history,
        "teacher": {"faces_with_target": 9, "faces": 10} if teacher != "none" else None,
    }
    (run / "training.json").write_text(json.dumps(record))
    return run


def test_summaries_round_trip_into_table_curve_and_doc(tmp_path):
    results = tmp_path / "results"
    long_run = bt.summarise("semihard, 85 min", _run(tmp_path, "a", 85.0), EVAL)
    short_run = bt.summarise("teacher, 6 min", _run(tmp_path, "b", 6.0, "dlib"), EVAL)
    assert long_run["steps"] == 400 and long_run["images_per_s"] == 150.0  # epoch 1 traces
    assert "pairs" not in long_run["devtest"] and long_run["devtest"]["one_shot_100way"] == 0.25
    assert short_run["teacher_targets"] == "9/10"
    path = bt.save_summary(long_run, results)
    bt.save_summary(short_run, results)
    assert path.name == "semihard-85-min.json"

    loaded = bt.load_summaries(results)
    assert [r["label"] for r in loaded] == ["teacher, 6 min", "semihard, 85 min"]
    loaded[0]["int8_ms_per_face"] = 1.25  # main() measures it; older summaries lack it
    rows = bt.table_rows(loaded)
    assert rows[1][:5] == ["semihard, 85 min", "semihard", "64 px x1", 632512, "-"]
    assert rows[0][4] == 1.25
    assert rows[1][9] == "0.810 ± 0.020"
    assert rows[0][1] == "semihard + dlib teacher + teacher margins to 0.5"

    doc, curve = tmp_path / "BENCH.md", tmp_path / "curve.png"
    bt.report(loaded, doc, curve)
    text = doc.read_text()
    assert "<!-- BEGIN trainer -->" in text and "| semihard, 85 min |" in text
    assert f"the rows were trained on: {long_run['machine']} ({long_run['recorded']})" in text
    assert "![accuracy vs training time](curve.png)" in text
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second report replaces the section instead of appending another
    bt.report(loaded[:1], doc, curve)
    assert doc.read_text().count("<!-- BEGIN trainer -->") == 1
    assert "semihard, 85 min" not in doc.read_text()


def test_stored_results_are_complete():
    """Every committed summary has what the table needs (a hand-edited file would break the doc)."""
    stored = bt.load_summaries()
    assert stored, "benchmarks/results/trainer/ is empty"
    rows = bt.table_rows(stored)
    assert all(len(row) == len(bt.HEADERS) for row in rows)


def test_curve_styles_colour_by_setup_and_dash_by_budget(tmp_path):
    runs = [
        bt.summarise("semihard, 6 min", _run(tmp_path, "a", 6.0), EVAL),
        bt.summarise("teacher, 6 min", _run(tmp_path, "b", 6.0, "dlib"), EVAL),
        bt.summarise("semihard, 85 min", _run(tmp_path, "c", 85.0), EVAL),
    ]
    (c1, s1), (c2, s2), (c3, s3) = bt.curve_styles(runs)
    assert c1 == c3 != c2  # same setup, same colour
    assert s1 == s2 != s3 and s3 == "-"  # same budget, same dashes; the longest is solid


@pytest.mark.slow
def test_int8_cost_of_an_architecture_grows_with_its_input():
    """The table's ms/face column: an untrained encoder converted to int8 and timed on LiteRT."""
    small, large = bt.int8_ms_per_face(32, 0.25, runs=40), bt.int8_ms_per_face(64, 0.25, runs=40)
    assert 0 < small < large


def test_a_continued_run_records_its_start_and_is_drawn_from_there(tmp_path, monkeypatch):
    run = _run(tmp_path, "c", 95.0, "dlib")
    record = json.loads((run / "training.json").read_text())
    record["settings"]["init_from"] = "edge/models/doorface-default.tflite"
    (run / "training.json").write_text(json.dumps(record))
    summary = bt.summarise("continued", run, EVAL)
    assert summary["init_from"] == "edge/models/doorface-default.tflite"
    summary["start_minutes"] = 85.0
    drawn = []
    monkeypatch.setattr(bt.plt.Axes, "plot", lambda self, x, y, **kw: drawn.append(list(x)))
    bt.plot_curves([summary], tmp_path / "curve.png")
    # minutes from where the model it started from ended; not on the from-scratch steps panel
    assert drawn == [[85.0 + 47.5, 85.0 + 95.0]]
