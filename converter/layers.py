"""Keras layers the converter can deserialise without the trainer installed.

The trainer registers ``doorface>L2Normalize`` (a layer calling ``tf.math.l2_normalize``, which
the TFLite converter lowers to ONE int8 ``L2_NORMALIZATION`` op; Keras' ``UnitNormalization``
leaves a float ``SQUARE`` behind). When ``trainer.model`` cannot be imported (a converter-only
install) :func:`custom_objects` supplies an equivalent stand-in under the same name, so we never
register a second class under the trainer's name (Keras would refuse the second import).

:class:`L2Normalize` here is registered under its own package ``doorface_converter`` and is what
test/fixture encoders use.
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras
import tensorflow as tf

TRAINER_LAYER = "doorface>L2Normalize"


@keras.saving.register_keras_serializable(package="doorface_converter")
class L2Normalize(keras.layers.Layer):
    """Unit-length rows via ``tf.math.l2_normalize`` (int8-friendly in TFLite)."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, inputs: Any) -> Any:
        return tf.math.l2_normalize(inputs, axis=self.axis, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


class _TrainerL2NormalizeStandIn(L2Normalize):
    """Deserialises the trainer's layer when ``trainer.model`` is not importable.

    Accepts (and ignores) config keys it does not know, so a later trainer field does not break
    loading; the maths is the same ``tf.math.l2_normalize`` over the last axis.
    """

    def __init__(self, axis: int = -1, epsilon: float = 1e-12, **kwargs: Any) -> None:
        base = {k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs}
        super().__init__(axis=axis, epsilon=epsilon, **base)


def custom_objects() -> dict[str, type]:
    """What ``keras.saving.load_model`` needs for doorface encoders.

    Imports ``trainer.model`` when present (it registers the real layer); otherwise maps the
    trainer's registered name to the stand-in.
    """
    # A missing or half-written trainer must not stop a conversion.
    with contextlib.suppress(Exception):
        import trainer.model  # noqa: F401  (registers doorface>L2Normalize)
    if TRAINER_LAYER in keras.saving.get_custom_objects():
        return {}
    return {TRAINER_LAYER: _TrainerL2NormalizeStandIn}
