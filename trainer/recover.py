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
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from trainer.errors import TrainingError

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


def folded_weights(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Layer name -> (Keras-layout kernel, folded bias, op) for every convolution of an int8
    encoder. Conv kernels come out (kh, kw, in, out); depthwise kernels (kh, kw, C, 1)."""
    from edge.litert import interpreter_class

    interpreter = interpreter_class()(model_path=str(path))
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    out: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] not in _WEIGHT_OPS:
            continue
        _, w_idx, b_idx = op["inputs"][:3]
        match = _LAYER.search(details[w_idx]["name"])
        if match is None:
            raise TrainingError(f"{path}: cannot name the layer of {details[w_idx]['name']!r}")
        w = _dequantize(details[w_idx], interpreter.get_tensor(w_idx))
        b = _dequantize(details[b_idx], interpreter.get_tensor(b_idx))
        # CONV_2D (out, kh, kw, in) -> (kh, kw, in, out); DEPTHWISE (1, kh, kw, C) -> (kh, kw, C, 1)
        kernel = w.transpose(1, 2, 3, 0) if op["op_name"] == "CONV_2D" else w[0][..., None]
        out[match.group(1)] = (kernel, b, op["op_name"])
    return out


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
