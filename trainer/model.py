"""The face encoder: a small MobileFaceNet-like network that quantises cleanly to int8 TFLite.

Input: float32 (N, S, S, 3) RGB pixel values 0..255 (rescaled inside the model, so the edge
feeds raw crops). Output: (N, embedding_size) L2-normalised by :class:`L2Normalize`.

Design choices and trade-offs:

* Inverted-residual blocks (1x1 expand, 3x3 depthwise, 1x1 linear project) with BatchNorm and
  ReLU (MobileFaceNet's PReLU is an option, but runs 20x slower in int8 on LiteRT/XNNPACK);
  three stride-2 stages, so a 64x64 crop ends at 8x8.
* A global depthwise conv ("GDC", kernel = the final spatial size) instead of global average
  pooling: it keeps *where* a feature is, which matters for aligned faces, and is one int8
  DEPTHWISE_CONV_2D. The price: the model is tied to its input size.
* BatchNorm momentum 0.9, not Keras' 0.99: in short CPU runs the moving statistics must track
  the weights, or inference-mode embeddings collapse while training-mode ones look fine.
* :class:`L2Normalize` calls ``tf.math.l2_normalize``, which converts to one int8
  L2_NORMALIZATION op; Keras' UnitNormalization leaves a float SQUARE op behind.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="doorface")
class L2Normalize(keras.layers.Layer):
    """Unit-length rows; one L2_NORMALIZATION op in (int8) TFLite."""

    def call(self, x):
        return tf.math.l2_normalize(x, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


def _ch(c: int, width: float) -> int:
    """Channels scaled by ``width``, rounded to a multiple of 8 (fast on XNNPACK), >= 8."""
    return max(8, round(c * width / 8) * 8)


#: "relu" is the default: measured on LiteRT/XNNPACK (int8, 64x64, 1 thread) the same network
#: takes 0.31 ms per face with ReLU and 6.2 ms with PReLU, because int8 PRELU is not an XNNPACK
#: op and splits the graph into 22 partitions. MobileFaceNet's PReLU stays available.
ACTIVATIONS = ("relu", "prelu")


def _act(x, name: str, activation: str | None):
    if activation is None:
        return x
    if activation == "prelu":
        return layers.PReLU(shared_axes=[1, 2], name=name + "_act")(x)
    return layers.ReLU(name=name + "_act")(x)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, act: str | None):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_bn")(x)
    return _act(x, name, act)


def _dw_bn(x, stride: int, name: str, act: str | None, kernel: int = 3, padding: str = "same"):
    x = layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_bn")(x)
    return _act(x, name, act)


def _bottleneck(x, out: int, expand: int, stride: int, name: str, act: str):
    inp = x.shape[-1]
    y = _conv_bn(x, inp * expand, 1, 1, name + "_expand", act)
    y = _dw_bn(y, stride, name + "_dw", act)
    y = _conv_bn(y, out, 1, 1, name + "_project", None)
    if stride == 1 and inp == out:
        y = layers.Add(name=name + "_add")([x, y])
    return y


#: (expansion, output channels, repeats, first stride) after the stem; see MobileFaceNet.
STAGES = ((2, 64, 3, 2), (4, 96, 4, 2), (2, 128, 2, 1))


def build_encoder(
    input_size: int = 64, embedding_size: int = 128, width: float = 1.0, activation: str = "relu"
) -> keras.Model:
    """A MobileFaceNet-like encoder, ~0.6 M parameters at the defaults.

    ``input_size`` must be a multiple of 8 and at least 32 (three stride-2 stages + GDC head).
    """
    if input_size < 32 or input_size % 8:
        raise ValueError(f"input_size must be a multiple of 8 and >= 32, got {input_size}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    inputs = keras.Input((input_size, input_size, 3), dtype="float32", name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = _conv_bn(x, _ch(64, width), 3, 2, "stem", activation)  # S/2
    x = _dw_bn(x, 1, "stem_dw", activation)
    for s, (expand, out, repeats, stride) in enumerate(STAGES):
        for r in range(repeats):
            first = stride if r == 0 else 1
            x = _bottleneck(x, _ch(out, width), expand, first, f"b{s}_{r}", activation)
    x = _conv_bn(x, _ch(512, width), 1, 1, "head_expand", activation)
    side = x.shape[1]
    x = _dw_bn(x, 1, "gdc", None, kernel=side, padding="valid")  # (N, 1, 1, C)
    x = layers.Conv2D(embedding_size, 1, use_bias=False, name="embedding")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="embedding_bn")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = L2Normalize(name="l2_normalize")(x)
    return keras.Model(inputs, outputs, name=f"doorface_encoder_{input_size}")
