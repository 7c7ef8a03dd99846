"""``converter import-yunet``: opencv_zoo's YuNet ONNX -> the edge's LiteRT detector file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converter.cli import main
from edge.detectors.yunet import SHIPPED_MODEL
from edge.detectors.yunet_litert import YuNetNet, source_of

SHIPPED_ONNX = SHIPPED_MODEL.with_suffix(".onnx")


def test_import_yunet_remakes_the_shipped_file_and_proves_it_against_opencv(tmp_path, capsys):
    """The shipped .tflite is what the command makes from the shipped ONNX (same faces on the
    test images), and its sidecar names that ONNX and the measured agreement."""
    from converter.yunet import agreement_images

    out = tmp_path / "yunet.tflite"
    assert main(["import-yunet", str(SHIPPED_ONNX), "--out", str(out)]) == 0
    assert "0 found by one only" in capsys.readouterr().out
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert (
        source_of(out) == source_of(SHIPPED_MODEL) == (SHIPPED_ONNX.name, sidecar["source_sha256"])
    )
    agreed = sidecar["agreement"]
    assert agreed["faces"] >= 12 and agreed["missing"] == 0
    assert max(agreed["max_box_px"], agreed["max_landmark_px"]) < 1e-3
    made = YuNetNet(out, score_threshold=0.5, nms_threshold=0.3, top_k=50)
    shipped = YuNetNet(SHIPPED_MODEL, score_threshold=0.5, nms_threshold=0.3, top_k=50)
    for image in agreement_images():
        np.testing.assert_allclose(made.detect(image), shipped.detect(image), atol=1e-4)


def _onnx_model(path, op: str, outputs: list[str]) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node(op, ["input"], [outputs[0]])]
    nodes += [helper.make_node("Relu", ["input"], [name]) for name in outputs[1:]]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), str(path))


def test_import_yunet_refuses_what_it_cannot_convert_in_one_line(tmp_path, capsys):
    heads = [f"{h}_{s}" for s in (8, 16, 32) for h in ("cls", "obj", "bbox", "kps")]
    softmax, other = tmp_path / "softmax.onnx", tmp_path / "other.onnx"
    _onnx_model(softmax, "Softmax", heads)
    _onnx_model(other, "Relu", ["scores"])
    photo = tmp_path / "photo.onnx"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a jpeg, not a model" * 10)
    cases = [
        (softmax, "an op YuNet does not use"),
        (other, "not a YuNet model"),
        (photo, "not an ONNX model"),
        (tmp_path / "none.onnx", "no such file"),
    ]
    for path, problem in cases:
        assert main(["import-yunet", str(path), "--out", str(tmp_path / "y.tflite")]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[-1].startswith("error: ") and problem in lines[-1], lines
    assert not (tmp_path / "y.tflite").exists()
