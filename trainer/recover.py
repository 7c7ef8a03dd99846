"""Rebuild a trainable float encoder from a shipped int8 model, so training can go on from it.

A run folder (``encoder.keras``) is not always kept, but the shipped ``model.tflite`` is: its
int8 weights are the trained network with each BatchNorm folded into the convolution before
it (``w' = w * gamma / sigma``, one bias ``b'`` per channel). :func:`encoder_from_tflite`
dequantises every CONV_2D / DEPTHWISE_CONV_2D back into :func:`trainer.model.build_encoder`'s
layer of the same name and sets that layer's BatchNorm so it passes the folded result through:
moving mean ``m`` and standard deviation ``s`` measured on real crops, ``gamma = s`` and
``beta = m + b'``. In inference mode the Keras model then computes exactly what the dequantised
int8 model computes in float; in training mode, on batches like the measured crops, BatchNorm
starts close to the identity instead of throwing the learned scale away.

Trade-offs: the weights carry their int8 rounding (per-tensor here: a channel with small
weights keeps few levels), so the recovered model is about as accurate as the int8 one, not the
lost float one; training from it re-learns those digits within a few hundred steps. Only
encoders of :func:`build_encoder`'s architecture are rebuilt: the layer names must match.

:func:`dlib_pruned_from_tflite` does the same for ``trainer prune-dlib``'s students (the
shipped ``doorface-small`` since 2026-12-07): dlib's network has no BatchNorm to restore, so
its widths, stem stride and shortcuts are read from the file and every weight is set as it is
(measured on the shipped file: cosine 0.999 to the int8 model's embeddings, as the lost float
model had). Files whose first convolution the converter stored as space-to-depth + a stride-1
convolution (every model it makes since 2026-12-07) are read as the network was trained
(:func:`converter.stem.plain_stem`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainer.errors import TrainingError

if TYPE_CHECKING:
    from converter.dlib_resnet import DlibWeights

_WEIGHT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D"}
_LAYER = re.compile(r"/([A-Za-z0-9_]+?)(?:_\d+)?/(?:convolution|depthwise)(?:;|$)")


def _dequantize(detail: dict, values: np.ndarray) -> np.ndarray:
    q = detail["quantization_parameters"]
    scales = np.asarray(q["scales"], np.float64)
    zeros = np.asarray(q["zero_points"], np.float64)
    if scales.size == 0:
        return values.astype(np.float32)
    axis = q["quantized_dimension"]
    shape = [1] * values.ndim
    if scales.size > 1:
        shape[axis] = scales.size
    return ((values - zeros.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def _weight_layers(path: str | Path) -> list[dict]:
    """Every weight op of an int8 model, in the file's op order: layer name, op, dequantised
    Keras-layout kernel and bias (None where the layer has none), output shape. Conv kernels
    come out (kh, kw, in, out); depthwise (kh, kw, C, 1); fully connected (in, out)."""
    from converter.stem import plain_stem
    from edge.litert import interpreter_class

    # the network as trained: a stem converter.stem rewrote for speed, back as one convolution
    interpreter = interpreter_class()(model_content=plain_stem(Path(path).read_bytes()))
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    out: list[dict] = []
    for op in interpreter._get_ops_details():
        kind = op["op_name"]
        if kind not in _WEIGHT_OPS and kind != "FULLY_CONNECTED":
            continue
        w_idx, b_idx = op["inputs"][1], (op["inputs"][2] if len(op["inputs"]) > 2 else -1)
        w = _dequantize(details[w_idx], interpreter.get_tensor(w_idx))
        b = _dequantize(details[b_idx], interpreter.get_tensor(b_idx)) if b_idx >= 0 else None
        if kind == "FULLY_CONNECTED":
            name, kernel = "dense", w.T  # (out, in) -> (in, out)
        else:
            match = _LAYER.search(details[w_idx]["name"])
            if match is None:
                raise TrainingError(f"{path}: cannot name the layer of {details[w_idx]['name']!r}")
            name = match.group(1)
            # CONV_2D (out, kh, kw, in) -> (kh, kw, in, out); DEPTHWISE (1, kh, kw, C) -> (kh, kw, C, 1)
            kernel = w.transpose(1, 2, 3, 0) if kind == "CONV_2D" else w[0][..., None]
        shape = tuple(int(d) for d in details[op["outputs"][0]]["shape"])
        out.append({"name": name, "op": kind, "kernel": kernel, "bias": b, "out_shape": shape})
    return out


def folded_weights(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Layer name -> (Keras-layout kernel, folded bias, op) for every convolution of an int8
    encoder. Conv kernels come out (kh, kw, in, out); depthwise kernels (kh, kw, C, 1)."""
    return {
        w["name"]: (w["kernel"], w["bias"], w["op"])
        for w in _weight_layers(path)
        if w["op"] in _WEIGHT_OPS
    }


def encoder_from_tflite(
    path: str | Path, crops: np.ndarray, *, embedding_size: int = 128, width: float = 1.0
):
    """A float Keras encoder computing what the int8 model at ``path`` computes (dequantised).

    ``crops`` (N, S, S, 3) uint8, real aligned faces (a few hundred), set the BatchNorm
    statistics the recovered layers start training from.
    """
    import keras

    from trainer.model import build_encoder

    size = int(crops.shape[1])
    folded = folded_weights(path)
    model = build_encoder(size, embedding_size, width)
    convs = [
        layer
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
    ]
    wanted = f"{path}: not an encoder of this architecture at {size} px, width {width}"
    missing = sorted({c.name for c in convs} - set(folded))
    if missing or len(folded) != len(convs):
        raise TrainingError(
            f"{wanted} (layers without weights: {', '.join(missing[:4]) or 'none'}; "
            f"{len(folded)} convolutions in the model file, {len(convs)} expected)"
        )
    for conv in convs:
        kernel, _, _ = folded[conv.name]
        if tuple(conv.kernel.shape) != kernel.shape:
            raise TrainingError(
                f"{wanted} (layer {conv.name} is {kernel.shape}, expected {tuple(conv.kernel.shape)})"
            )
        conv.kernel.assign(kernel)
        bias = folded[conv.name][1]
        _set_bn(model.get_layer(conv.name + "_bn"), np.zeros_like(bias), np.ones_like(bias), bias)
    # every convolution's raw output on real faces, measured in one pass (BatchNorm is now the
    # identity plus the folded bias, so each layer sees what the int8 model's layer sees)
    probe = keras.Model(model.inputs, [c.output for c in convs])
    raw = probe.predict(crops.astype(np.float32), batch_size=128, verbose=0)
    for conv, z in zip(convs, raw, strict=True):
        z = z.reshape(-1, z.shape[-1]).astype(np.float64)
        _set_bn(
            model.get_layer(conv.name + "_bn"), z.mean(axis=0), z.std(axis=0), folded[conv.name][1]
        )
    return model


def _set_bn(bn, mean: np.ndarray, std: np.ndarray, bias: np.ndarray) -> None:
    """BatchNorm that maps z to z + bias in inference mode (moving statistics ``mean``, ``std``;
    gamma = std, beta = mean + bias), and close to it in training mode on batches like those the
    statistics came from."""
    var = np.maximum(std.astype(np.float64) ** 2, bn.epsilon) - bn.epsilon
    bn.moving_mean.assign(mean.astype(np.float32))
    bn.moving_variance.assign(var.astype(np.float32))
    bn.gamma.assign(np.sqrt(var + bn.epsilon).astype(np.float32))
    bn.beta.assign((mean + bias).astype(np.float32))


def trained_model(path: Path, rebuild: Callable[[Path], Any]) -> Any:
    """The trained encoder ``--init-from`` names (``trainer train`` and ``trainer prune-dlib``):
    a run's ``encoder.keras``, or an int8 ``.tflite`` rebuilt in float by ``rebuild`` (one of
    this module's, for the command's architecture) when the run folder is gone. TrainingError,
    one line, for a missing or unreadable file."""
    import keras

    import trainer.model  # noqa: F401  (registers L2Normalize)

    if not path.is_file():
        raise TrainingError(f"--init-from: {path} is not a file")
    try:
        if path.suffix == ".tflite":
            return rebuild(path)
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as exc:  # not a model file Keras or LiteRT can read
        raise TrainingError(f"--init-from {path}: {str(exc).splitlines()[0]}") from None


def _creation_order(name: str) -> int:
    """Keras numbers auto-named layers as it makes them (conv2d, conv2d_1, ...)."""
    number = name.rsplit("_", 1)[-1]
    return int(number) if number.isdigit() else 0


def dlib_pruned_from_tflite(path: str | Path, weights: DlibWeights):
    """A float Keras model computing what an int8 ``trainer prune-dlib`` student computes
    (dequantised): its widths and stem read from the file, :func:`converter.dlib_resnet.build_model`
    built to them from dlib's ``weights`` (read_weights), every convolution and the final
    projection then set from the file's weights.
    The network has no BatchNorm (dlib's is folded into its convolutions), so training and
    inference start from the same function. TrainingError, one line, for another architecture."""
    import keras

    from converter.dlib_resnet import CHIP_SIZE, STAGES, Pruning, build_model

    layers = _weight_layers(path)
    convs = sorted(
        (w for w in layers if w["op"] == "CONV_2D"), key=lambda w: _creation_order(w["name"])
    )
    dense = [w for w in layers if w["op"] == "FULLY_CONNECTED"]
    wrong = f"{path}: not a pruned dlib network (trainer prune-dlib)"
    if not convs or convs[0]["kernel"].shape[:3] != (7, 7, 3) or len(dense) != 1:
        raise TrainingError(wrong)
    stem_stride = 4 if convs[0]["out_shape"][1] == (CHIP_SIZE - 7) // 4 + 1 else 2
    stream, middle, k = [np.arange(convs[0]["kernel"].shape[3])], [], 1
    try:
        for i, (dlib_width, n) in enumerate(STAGES):
            for j in range(n + bool(i)):
                middle.append(np.arange(convs[k]["kernel"].shape[3]))
                width, k = convs[k + 1]["kernel"].shape[3], k + 2
                if i and j == 0:  # a stage's first block: its stream's channels, from the shortcut
                    pad = convs[k]["kernel"] if k < len(convs) and _is_shortcut(convs[k]) else None
                    k += pad is not None
                    stream.append(_stream_after(stream[-1], pad, width, dlib_width))
    except IndexError:
        raise TrainingError(wrong) from None
    if k != len(convs):
        raise TrainingError(wrong)
    pruning = Pruning(tuple(stream), tuple(middle), stem_stride)
    model = build_model(weights, pruning)
    mine = sorted(
        (layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)),
        key=lambda layer: _creation_order(layer.name),
    )
    for layer, w in zip(mine, convs, strict=True):
        if tuple(layer.kernel.shape) != w["kernel"].shape:
            raise TrainingError(
                f"{path}: not a pruned dlib network (layer {layer.name} is {w['kernel'].shape}, "
                f"expected {tuple(layer.kernel.shape)})"
            )
        layer.set_weights([w["kernel"], w["bias"]] if layer.use_bias else [w["kernel"]])
    fc = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    fc.set_weights([dense[0]["kernel"]])
    return model


def _is_shortcut(w: dict) -> bool:
    """build_model's fixed 1x1 convolution that lays a stage's input channels onto its stream's
    (zeros and ones, no bias)."""
    k, b = w["kernel"], w["bias"]
    return (
        k.shape[:2] == (1, 1)
        and bool(np.all(np.isclose(k, 0) | np.isclose(k, 1)))
        and (b is None or not np.any(b))
    )


def _stream_after(before: np.ndarray, shortcut: np.ndarray | None, width: int, dlib_width: int):
    """Channel numbers for a stage's stream such that build_model's shortcut between ``before``
    and it is ``shortcut`` (None: the same channels as before): an output channel fed by input r
    gets before[r]'s number, the others numbers ``before`` does not use."""
    if shortcut is None:
        return before.copy()
    eye = shortcut[0, 0] > 0.5  # (in, out)
    free = iter(sorted(set(range(dlib_width)) - set(before.tolist())))
    return np.array(
        [
            before[np.flatnonzero(eye[:, c])[0]] if eye[:, c].any() else next(free)
            for c in range(width)
        ]
    )
