"""Keras encoder -> TFLite bytes, in four modes.

Path (verified on TF 2.21 / Keras 3): ``keras.export.ExportArchive`` with a fixed
``[1, S, S, 3]`` float32 signature -> temporary SavedModel -> ``TFLiteConverter.from_saved_model``.
``from_concrete_functions`` with the Keras model attached silently produced NaN int8 models, so it
is not used. The batch is fixed at 1: the edge embeds one face per invoke, and a static shape
lets the converter fold every reshape.

Modes (trade-offs):

- ``int8``: full integer; int8 weights AND activations, int8 input/output, builtin int8 kernels
  only. Smallest and fastest on the Pi's Cortex-A (XNNPACK/ruy int8), needs a representative set
  of real aligned faces; costs a little cosine agreement.
- ``float16``: weights stored as fp16 (half size), compute in float32 on CPU. No calibration.
- ``dynamic``: int8 weights, float activations quantised on the fly per op. No calibration;
  output stays float32.
- ``float32``: reference; no quantisation.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import ConverterError
from converter.stem import space_to_depth_stem

MODES = ("int8", "float16", "dynamic", "float32")


def load_encoder(path: str | Path) -> Any:
    """Load a ``.keras`` encoder and check it maps ``[None, S, S, 3]`` to ``[None, D]``.

    Raises ConverterError (one line) for a missing file, a non-Keras file, or a wrong shape.
    """
    import keras

    import trainer.model  # noqa: F401  (registers doorface>L2Normalize for deserialisation)

    path = Path(path)
    if not path.is_file():
        raise ConverterError(f"{path}: no such model file")
    if path.suffix != ".keras":
        raise ConverterError(f"{path}: not a Keras model (expected a .keras file)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors, TypeError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConverterError(f"{path}: not a loadable Keras model ({first[:200]})") from None
    encoder_shapes(model, str(path))
    return model


def encoder_shapes(model: Any, where: str = "model") -> tuple[int, int]:
    """(input size S, embedding size D) of an encoder, or ConverterError naming the problem."""
    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConverterError(
            f"{where}: expected one input and one output, got {len(inputs)} and {len(outputs)}"
        )
    in_shape = tuple(inputs[0].shape)
    out_shape = tuple(outputs[0].shape)
    if len(in_shape) != 4 or in_shape[3] != 3 or not in_shape[1] or in_shape[1] != in_shape[2]:
        raise ConverterError(
            f"{where}: input shape {in_shape}: expected (None, S, S, 3) RGB square crops"
        )
    if len(out_shape) != 2 or not out_shape[1]:
        raise ConverterError(f"{where}: output shape {out_shape}: expected (None, D) embeddings")
    return int(in_shape[1]), int(out_shape[1])


def _representative(faces: np.ndarray) -> Iterator[list[np.ndarray]]:
    for face in faces:
        yield [np.asarray(face, np.float32)[None]]


def convert(
    model: Any, mode: str = "int8", faces: np.ndarray | None = None, *, per_channel: bool = True
) -> bytes:
    """Convert a loaded encoder to TFLite bytes.

    ``faces``: (N, S, S, 3) aligned RGB crops (uint8 or float 0..255), required for int8.
    ``per_channel=False`` (int8 only): one scale per weight tensor instead of one per output
    channel. Per-channel metadata costs 12 bytes per channel (float scale + int64 zero point,
    ~160 KB for the 0.6 M-parameter MobileFaceNet-like encoder, about 6 points of the int8/float32
    size ratio); per-tensor drops it but can lose accuracy on depthwise convolutions whose folded
    BatchNorm makes channel ranges differ. Uses the converter's private
    ``_experimental_disable_per_channel`` switch.
    A strided first convolution on the 3 colour channels (dlib's network and the students
    pruned from it) comes out as space-to-depth + a stride-1 convolution: the same output,
    faster (:mod:`converter.stem`).
    Raises ConverterError if the converter fails; the caller verifies the result with
    :func:`converter.inspect.inspect_model` (we do not trust the converter's own claims).
    """
    import keras
    import tensorflow as tf

    if mode not in MODES:
        raise ConverterError(f"--mode: must be one of {', '.join(MODES)}, got {mode!r}")
    size, _ = encoder_shapes(model)
    if mode == "int8" and (faces is None or len(faces) == 0):
        raise ConverterError("int8 needs a representative set of aligned faces (none given)")
    tmp = tempfile.mkdtemp(prefix="doorface-savedmodel-")
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            name="serve",
            fn=lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="pixels")],
        )
        with _quiet():
            archive.write_out(tmp, verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        if mode in ("int8", "float16", "dynamic"):
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            conv.target_spec.supported_types = [tf.float16]
        if mode == "int8":
            assert faces is not None
            conv.representative_dataset = lambda: _representative(faces)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
            conv._experimental_disable_per_channel = not per_channel
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        with _quiet():
            data = bytes(conv.convert())
        return space_to_depth_stem(data)[0]
    except ConverterError:
        raise
    except Exception as exc:
        text = str(exc).strip()
        # The MLIR converter's message is long; its first line that names an op is the useful one.
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        useful = next((ln for ln in lines if "op" in ln and "error" in ln.lower()), None)
        first = useful or (lines[0] if lines else type(exc).__name__)
        raise ConverterError(f"TFLite conversion ({mode}) failed: {first[:300]}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _quiet:
    """Silence TensorFlow's C++ logging on fd 2 while converting (unless DOORFACE_VERBOSE)."""

    def __enter__(self) -> None:
        self._saved = None
        if os.environ.get("DOORFACE_VERBOSE"):
            return
        try:
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self._saved = None

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
