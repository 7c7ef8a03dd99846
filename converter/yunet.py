"""YuNet's ONNX (opencv_zoo) rebuilt in TensorFlow and written as a float32 TFLite file.

Why: OpenCV's DNN module ran the shipped YuNet in 5.2-6.8 ms per 320x240 frame on one core of
the Intel Xeon of 2026-12-07, this file on LiteRT in 2.7-3.1 ms with the same faces
(docs/BENCHMARKS.md, "Face detection on LiteRT"). The edge already carries LiteRT for its
encoder, so the detector runs there too, and nothing else is installed on the Pi.

The graph is read with the ``onnx`` package (desktop only) and rebuilt op by op in NHWC: the
only ops YuNet uses are ``Conv`` (dense or depthwise, symmetric padding), ``Relu``,
``MaxPool`` 2x2, ``Resize`` (nearest, x2), ``Add``, ``Sigmoid`` and, on its outputs,
``Transpose`` to NHWC and ``Reshape`` to (1, cells, channels). Any other op is refused by name.
The file takes a BGR float32 image of any height and width that are multiples of 32 and gives
one tensor (1, cells, 16): for the cells of stride 8, then 16, then 32 (row-major), the
columns ``cls, obj, bbox (4), kps (10)`` that :mod:`edge.detectors.yunet_litert` decodes as
OpenCV's ``FaceDetectorYN`` does. :func:`agreement` then runs both on test images and reports
the largest difference of their faces (the edge's test holds the shipped file to it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from converter.errors import ConverterError
from edge.detectors.yunet_litert import SOURCE_KEYS, STRIDES, sidecar_path
from edge.files import FileError, check_regular
from edge.manifest import sha256_file

_HEADS = ("cls", "obj", "bbox", "kps")


@dataclass(frozen=True)
class Agreement:
    """The largest difference between OpenCV's faces and the TFLite file's, over test images."""

    images: int
    faces: int
    max_box_px: float
    max_landmark_px: float
    max_score: float
    missing: int  # faces one found and the other did not


class OpenCVYuNet:
    """The ONNX on OpenCV's DNN module (``cv2.FaceDetectorYN``), as the edge ran YuNet until
    2026-12-07: the reference a converted file is held to. :meth:`detect` gives the rows
    :meth:`edge.detectors.yunet_litert.YuNetNet.detect` gives (the edge's defaults: score
    threshold 0.5, NMS 0.3, top 50)."""

    def __init__(self, onnx_path: Path) -> None:
        self._size = (320, 320)
        self._net = cv2.FaceDetectorYN.create(str(onnx_path), "", self._size, 0.5, 0.3, 50)

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        size = (image_bgr.shape[1], image_bgr.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        rows = self._net.detect(image_bgr)[1]
        return np.zeros((0, 15), np.float32) if rows is None else rows


def _onnx_graph(path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ConverterError("import-yunet needs the onnx package: pip install onnx") from None
    try:
        check_regular(path)
        model = onnx.load(str(path))
    except FileError as exc:
        raise ConverterError(str(exc)) from None
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise ConverterError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return model.graph, weights


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _conv(tf: Any, x: Any, node: Any, w: dict[str, np.ndarray]) -> Any:
    a = _attrs(node)
    kernel = w[node.input[1]]  # (out, in / group, kh, kw)
    bias = w[node.input[2]] if len(node.input) > 2 else np.zeros(kernel.shape[0], np.float32)
    top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
    if a.get("dilations", [1, 1]) != [1, 1] or (top, left) != (bottom, right):
        raise ConverterError(f"Conv {node.name}: dilation or asymmetric padding not supported")
    stride = [1, *a.get("strides", [1, 1]), 1]
    padding = "VALID"
    if top and stride == [1, 1, 1, 1] and 2 * top + 1 == kernel.shape[2] == kernel.shape[3]:
        padding = "SAME"  # the same zeros on every side, without a PAD op per convolution
    elif top:
        x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    group = a.get("group", 1)
    if group == 1:
        y = tf.nn.conv2d(x, kernel.transpose(2, 3, 1, 0), stride, padding)
    elif group == kernel.shape[0] and kernel.shape[1] == 1:
        y = tf.nn.depthwise_conv2d(x, kernel.transpose(2, 3, 0, 1), stride, padding)
    else:
        raise ConverterError(f"Conv {node.name}: grouped convolution with {group} groups")
    return y + bias


def _op(tf: Any, node: Any, args: list[Any], w: dict[str, np.ndarray]) -> Any:
    op, x = node.op_type, args[0]
    if op == "Conv":
        return _conv(tf, x, node, w)
    if op == "Relu":
        return tf.nn.relu(x)
    if op == "Sigmoid":
        return tf.sigmoid(x)
    if op == "Add":
        return x + args[1]
    if op == "MaxPool":
        a = _attrs(node)
        if a.get("kernel_shape") != [2, 2] or a.get("strides") != [2, 2] or any(a.get("pads", [])):
            raise ConverterError(f"MaxPool {node.name}: only 2x2, stride 2, no padding")
        return tf.nn.max_pool2d(x, 2, 2, "VALID")
    if op == "Resize":
        a, scales = _attrs(node), w.get(node.input[2]) if len(node.input) > 2 else None
        if a.get("mode") != b"nearest" or scales is None or list(scales) != [1, 1, 2, 2]:
            raise ConverterError(f"Resize {node.name}: only nearest x2")
        # nearest x2 as four copies of each pixel: no size computed at run time, and both ops
        # stay inside XNNPACK (a RESIZE_NEAREST_NEIGHBOR split the graph in three parts)
        return tf.nn.depth_to_space(tf.concat([x, x, x, x], axis=-1), 2)
    if op == "Transpose":
        if list(_attrs(node)["perm"]) != [0, 2, 3, 1]:
            raise ConverterError(f"Transpose {node.name}: only NCHW -> NHWC")
        return x  # the graph is NHWC already
    if op == "Reshape":
        return tf.reshape(x, [1, -1, int(w[node.input[1]][-1])])
    raise ConverterError(f"{node.op_type}: an op YuNet does not use")


def build_function(path: Path) -> Any:
    """A ``tf.function`` from a (1, H, W, 3) BGR float32 image to (1, cells, 16)."""
    import tensorflow as tf

    graph, weights = _onnx_graph(path)
    outputs = {o.name for o in graph.output}
    wanted = [f"{head}_{s}" for s in STRIDES for head in _HEADS]
    if set(wanted) - outputs:
        raise ConverterError(f"{path}: not a YuNet model (outputs {sorted(outputs)})")

    def run(image: Any) -> Any:
        values: dict[str, Any] = {graph.input[0].name: image}
        for node in graph.node:
            args = [values[i] for i in node.input if i in values]
            values[node.output[0]] = _op(tf, node, args, weights)
        per_stride = [
            tf.concat([values[f"{head}_{s}"] for head in _HEADS], axis=-1) for s in STRIDES
        ]
        return tf.concat(per_stride, axis=1)

    run(tf.zeros([1, 64, 64, 3]))  # eagerly first: an unsupported op is a plain error here
    spec = tf.TensorSpec([1, None, None, 3], tf.float32, name="image")
    return tf.function(run, input_signature=[spec])


def to_tflite(path: Path) -> bytes:
    import tensorflow as tf

    fn = build_function(path)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    return converter.convert()


def agreement(onnx_path: Path, tflite_path: Path, images: list[np.ndarray]) -> Agreement:
    """:class:`OpenCVYuNet` on the ONNX against the edge's YuNet on the TFLite file, on each
    image at its own size."""
    from edge.detectors.yunet_litert import YuNetNet

    ours = YuNetNet(tflite_path, score_threshold=0.5, nms_threshold=0.3, top_k=50)
    reference = OpenCVYuNet(onnx_path)
    faces = missing = 0
    box = landmark = score = 0.0
    for image in images:
        theirs, mine = reference.detect(image), ours.detect(image)
        for row in theirs:
            if len(mine) == 0:
                missing += 1
                continue
            near = mine[np.argmin(np.abs(mine[:, :4] - row[:4]).max(axis=1))]
            d_box = float(np.abs(near[:4] - row[:4]).max())
            if d_box > 0.25 * max(float(row[2]), 1.0):
                missing += 1
                continue
            faces += 1
            box = max(box, d_box)
            landmark = max(landmark, float(np.abs(near[4:14] - row[4:14]).max()))
            score = max(score, float(abs(near[14] - row[14])))
        missing += max(0, len(mine) - len(theirs))
    return Agreement(len(images), faces, box, landmark, score, missing)


def agreement_images() -> list[np.ndarray]:
    """scikit-image's astronaut (the test suite's shipped face) at sizes from 100 to 640 px
    wide, square and 4:3, on its own and pasted twice into a grey frame."""
    from skimage import data

    rgb = data.astronaut()
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    out = []
    for width in (100, 160, 250, 320, 512, 640):
        out.append(cv2.resize(bgr, (width, width), interpolation=cv2.INTER_AREA))
        out.append(cv2.resize(bgr, (width, width * 3 // 4), interpolation=cv2.INTER_AREA))
    frame = np.full((480, 640, 3), 90, np.uint8)
    face = cv2.resize(bgr, (200, 200), interpolation=cv2.INTER_AREA)
    frame[40:240, 40:240] = face
    frame[250:450, 380:580] = face
    out.append(frame)
    return out


def import_yunet(onnx_path: Path, out: Path) -> Agreement:
    """Write ``out`` (.tflite) and its sidecar JSON (source file and sha256, agreement)."""
    data = to_tflite(onnx_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    agreed = agreement(onnx_path, out, agreement_images())
    source, sha = SOURCE_KEYS
    record = {source: onnx_path.name, sha: sha256_file(onnx_path), "agreement": asdict(agreed)}
    sidecar_path(out).write_text(json.dumps(record, indent=2) + "\n")
    return agreed
