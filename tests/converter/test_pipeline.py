"""The full quantize pipeline on a tiny encoder trained in-test on real LFW faces."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

#: Builtin kernels that have int8 implementations and are expected in a doorface encoder.
INT8_OPS = {
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "HARD_SWISH",
    "L2_NORMALIZATION",
    "MAX_POOL_2D",
    "MEAN",
    "MUL",
    "PAD",
    "QUANTIZE",
    "RESHAPE",
    "RELU",
    "RELU6",
    "LOGISTIC",
}


def _plain_interpreter(path: Path):
    """LiteRT without XNNPACK, so op details show the model's own ops, not DELEGATE nodes."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    return interp


def test_int8_contract_read_by_the_interpreter(converted: Path) -> None:
    """Checked with LiteRT's own view of the file, independent of converter.inspect."""
    interp = _plain_interpreter(converted)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert tuple(inp["shape"]) == (1, 32, 32, 3) and tuple(out["shape"]) == (1, 128)
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert ops <= INT8_OPS, ops - INT8_OPS
    assert "L2_NORMALIZATION" in ops
    dtypes = {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}
    assert dtypes <= {"int8", "int32"}, dtypes


def test_converter_inspect_agrees_with_interpreter(converted: Path) -> None:
    from converter.inspect import inspect_model

    report = inspect_model(converted)
    interp = _plain_interpreter(converted)
    ops = [op["op_name"] for op in interp._get_ops_details()]
    assert sorted(report.op_counts.elements()) == sorted(ops)
    assert report.int8_violations() == []
    assert report.param_count > 10_000


def test_manifest_validates_and_matches_the_file(converted: Path, trained_model: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from edge.align import PREPROCESS_VERSION
    from edge.manifest import load_manifest, sha256_file

    m = load_manifest(converted.with_suffix(".json"))
    interp = Interpreter(model_path=str(converted))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert (m.input_height, m.input_width, m.embedding_size) == (32, 32, 128)
    assert m.quantization == "int8" and m.channel_order == "RGB"
    assert m.preprocessing == PREPROCESS_VERSION
    assert (m.input_quant.dtype, m.output_quant.dtype) == ("int8", "int8")
    assert m.input_quant.scale == pytest.approx(inp["quantization"][0])
    assert m.input_quant.zero_point == inp["quantization"][1]
    assert m.output_quant.scale == pytest.approx(out["quantization"][0])
    assert m.output_quant.zero_point == out["quantization"][1]
    assert m.tflite_sha256 == sha256_file(converted)
    assert m.source_sha256 == sha256_file(trained_model)
    assert m.threshold == pytest.approx(0.45)  # from training.json
    assert m.extra["threshold_source"] == "training.json"
    assert m.extra["training_metrics"] == {"note": "test fixture", "epochs": 25}
    assert m.extra["source_name"] == "encoder.keras"
    assert m.extra["calibration"]["faces"] == 120
    assert {"tensorflow", "keras", "ai-edge-litert", "doorface"} <= set(m.tools)
    created = dt.datetime.fromisoformat(m.created)
    assert created.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 3600
    assert m.metrics["cosine_agreement_calibration_faces"]["mean"] >= 0.99
    leftovers = [p.name for p in converted.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_edge_runs_it_without_tensorflow_and_agrees_with_float(
    converted: Path, trained_model: Path, celeba_crops: np.ndarray, tmp_path: Path
) -> None:
    """A fresh interpreter process (no TensorFlow) embeds unseen CelebA faces like Keras does."""
    import keras

    crops_file, emb_file = tmp_path / "crops.npy", tmp_path / "emb.npy"
    np.save(crops_file, celeba_crops)
    script = (
        "import sys, numpy as np\n"
        "from edge.embedder import Embedder\n"
        f"e = Embedder({str(converted)!r})\n"
        f"np.save({str(emb_file)!r}, e.embed(np.load({str(crops_file)!r})))\n"
        "assert 'tensorflow' not in sys.modules, 'edge path imported tensorflow'\n"
        "assert 'keras' not in sys.modules\n"
        "print('ok', e.scoring.threshold)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("ok")
    q = np.load(emb_file)
    model = keras.saving.load_model(trained_model)
    f = np.asarray(model.predict(celeba_crops.astype(np.float32), verbose=0))
    cos = np.sum(q * f, axis=1) / np.linalg.norm(q, axis=1) / np.linalg.norm(f, axis=1)
    assert len(cos) == len(celeba_crops) >= 50
    assert cos.mean() >= 0.99, cos.mean()
    assert np.percentile(cos, 1) >= 0.95


def test_int8_embeddings_still_separate_people(
    converted: Path, trained_model: Path, lfw_identity_crops
) -> None:
    """On held-out photos of the training people, same-person cosines beat different-person ones
    (float and int8 alike): the embeddings mean something and quantisation kept it."""
    import keras

    from edge.embedder import Embedder
    from tests.converter.tests_converter_helpers import same_vs_different

    crops, labels = lfw_identity_crops
    held = np.arange(len(labels)) % 14 >= 10
    model = keras.saving.load_model(trained_model)
    f = np.asarray(model.predict(crops[held].astype(np.float32), verbose=0))
    q = Embedder(converted).embed(crops[held])
    gap_f, auc_f = same_vs_different(f, labels[held])
    gap_q, auc_q = same_vs_different(q, labels[held])
    assert gap_f > 0.1 and auc_f > 0.75, (gap_f, auc_f)
    assert gap_q > 0.1 and auc_q > 0.75, (gap_q, auc_q)
    assert abs(auc_f - auc_q) < 0.03


def test_check_cli_passes_int8_and_lists_ops(converted: Path, capsys) -> None:
    from converter.cli import main

    assert main(["check", str(converted)]) == 0
    out = capsys.readouterr().out
    assert "L2_NORMALIZATION" in out and "CONV_2D" in out
    assert "parameters:" in out and "size:" in out
    assert "ok: full-integer int8" in out
    assert "XNNPACK partitions: 1;" in out  # the whole int8 graph runs in one XNNPACK partition


def test_check_cli_fails_float_model_when_int8_required(float32_model: Path, capsys) -> None:
    from converter.cli import main

    assert main(["check", str(float32_model)]) == 0  # manifest says float32: fine as it is
    capsys.readouterr()
    assert main(["check", str(float32_model), "--require-int8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "FLOAT32" in err and err.count("\n") == 1


def test_check_cli_fails_when_manifest_claims_int8_of_a_float_file(
    float32_model: Path, tmp_path: Path, capsys
) -> None:
    """The check reads the file, not the converter's or the manifest's claims."""
    from converter.cli import main

    liar = tmp_path / "liar.tflite"
    liar.write_bytes(float32_model.read_bytes())
    data = json.loads(float32_model.with_suffix(".json").read_text())
    data["quantization"]["mode"] = "int8"
    liar.with_suffix(".json").write_text(json.dumps(data))
    assert main(["check", str(liar)]) == 1
    assert "not full-integer int8" in capsys.readouterr().err


def test_compare_cli_within_and_outside_tolerance(
    converted: Path,
    trained_model: Path,
    celeba_dir: Path,
    yunet_path: Path,
    tmp_path: Path,
    capsys,
) -> None:
    from converter.cli import main

    report = tmp_path / "compare.json"
    args = [
        "compare",
        str(trained_model),
        str(converted),
        "--images",
        str(celeba_dir),
        "--max-images",
        "60",
        "--detector-model",
        str(yunet_path),
        "--quiet",
        "--json",
        str(report),
    ]
    assert main(args) == 0
    result = json.loads(report.read_text())
    assert result["cosine"]["faces"] == 60
    assert result["cosine"]["mean"] >= 0.99
    assert result["cosine"]["min"] <= result["cosine"]["p1"] <= result["cosine"]["mean"]
    assert result["pairs_compared"] == 60 * 59 // 2
    assert 0.95 <= result["decision_agreement"] <= 1.0
    capsys.readouterr()
    assert main([*args, "--tolerance-mean", "0.99999"]) == 1
    assert "cosine mean" in capsys.readouterr().err


def test_compare_with_pairs_reports_accuracy_of_both(
    converted: Path, trained_model: Path, lfw_dir: Path, yunet, tmp_path: Path
) -> None:
    from converter.compare import compare

    lines = (Path(lfw_dir).parent / "lfw-view1" / "pairsDevTest.txt").read_text().splitlines()
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "\n".join(["40", *lines[1:41], *lines[501:541]]) + "\n"
    )  # 40 same + 40 different
    result = compare(trained_model, converted, lfw_dir, pairs=pairs, progress=False)
    for key in ("float32", "quantized"):
        assert result[key]["pairs"] == 80
        assert 0.0 <= result[key]["accuracy_at_threshold"] <= 1.0
    drop = result["float32"]["accuracy_at_threshold"] - result["quantized"]["accuracy_at_threshold"]
    assert abs(drop) <= 0.1
    assert result["cosine"]["mean"] >= 0.99


def test_quantize_with_pairs_calibrates_threshold_and_measures_both(
    trained_model: Path, lfw_dir: Path, pairs_dev_test: Path, yunet_path: Path, tmp_path: Path
) -> None:
    """Without training.json, --pairs/--images set the threshold; training.json's (held-out
    identities) or --threshold wins over it."""
    import shutil

    from converter.cli import main
    from edge.manifest import load_manifest

    model = tmp_path / "model" / "encoder.keras"
    model.parent.mkdir()
    shutil.copy(trained_model, model)
    lines = pairs_dev_test.read_text().splitlines()
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(["40", *lines[1:41], *lines[501:541]]) + "\n")
    common = [
        "quantize",
        str(model),
        "--calibration",
        str(lfw_dir),
        "--samples",
        "60",
        "--pairs",
        str(pairs),
        "--images",
        str(lfw_dir),
        "--detector-model",
        str(yunet_path),
        "--quiet",
    ]
    out = tmp_path / "calibrated.tflite"
    assert main([*common, "--out", str(out)]) == 0
    m = load_manifest(out.with_suffix(".json"))
    assert m.extra["threshold_source"].startswith("calibrated on")
    # no detector in training.json here: the calibration detector (the shipped YuNet) is recorded
    assert m.detector is not None and m.detector.backend == "yunet"
    assert m.detector.model == "face_detection_yunet_2026may.onnx"
    assert m.threshold == pytest.approx(m.metrics["quantized"]["best_threshold"], abs=1e-5)
    assert m.metrics["float32"]["pairs"] == m.metrics["quantized"]["pairs"] == 80
    drop = (
        m.metrics["float32"]["accuracy_at_threshold"]
        - m.metrics["quantized"]["accuracy_at_threshold"]
    )
    assert abs(drop) <= 0.1
    assert m.metrics["cosine_agreement_pair_faces"]["mean"] >= 0.99
    fixed = tmp_path / "fixed.tflite"
    assert main([*common, "--out", str(fixed), "--threshold", "0.25"]) == 0
    m2 = load_manifest(fixed.with_suffix(".json"))
    assert m2.threshold == 0.25 and m2.extra["threshold_source"] == "--threshold"
    assert m2.metrics["quantized"]["threshold"] == 0.25
    # a held-out threshold in training.json beats one fitted on the pairs being scored
    (model.parent / "training.json").write_text('{"threshold": 0.61}')
    held = tmp_path / "held.tflite"
    assert main([*common, "--out", str(held)]) == 0
    m3 = load_manifest(held.with_suffix(".json"))
    assert m3.threshold == 0.61 and m3.extra["threshold_source"] == "training.json"
    assert m3.metrics["quantized"]["threshold"] == 0.61
