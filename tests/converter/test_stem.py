"""The stem rewrite (converter.stem): exact on converted models, undone for readers, applied by
the converter and present in the shipped models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.convert import convert
from converter.inspect import inspect_bytes
from converter.stem import from_blocks, plain_stem, space_to_depth_stem, to_blocks
from edge.litert import interpreter_class

MODELS = Path(__file__).resolve().parents[2] / "edge" / "models"


def tiny_encoder(size: int, stride: int, padding: str = "valid"):
    """A 7x7 strided stem on RGB, then a few layers to an L2-normalised embedding."""
    import keras
    from keras import layers

    from trainer.model import L2Normalize

    keras.utils.set_random_seed(stride)
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(8, 7, strides=stride, padding=padding, activation="relu")(inputs)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.Dense(12)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, L2Normalize()(x))


def faces(n: int, size: int) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def outputs(data: bytes, inputs: np.ndarray) -> np.ndarray:
    interpreter = interpreter_class()(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    into, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for x in inputs:
        interpreter.set_tensor(into["index"], x[None].astype(into["dtype"]))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(results)


def batched_outputs(data: bytes, inputs: np.ndarray) -> np.ndarray:
    """All inputs in one invoke, the input resized to their number, as the edge resizes it to
    a face's views (flip fusion: 2, with zoom: 4)."""
    interpreter = interpreter_class()(model_content=data, num_threads=1)
    into = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(into["index"], list(inputs.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(into["index"], inputs.astype(into["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def int8_inputs(n: int, size: int) -> np.ndarray:
    return np.random.default_rng(2).integers(-128, 128, (n, size, size, 3), dtype=np.int8)


def op_names(data: bytes) -> list[str]:
    return [op.name for op in inspect_bytes(data).ops]


@pytest.mark.parametrize(("size", "stride", "sliced"), [(38, 2, False), (38, 4, True)])
def test_converted_int8_stem_is_rewritten_and_gives_the_same_bytes(size, stride, sliced):
    converted = convert(tiny_encoder(size, stride), "int8", faces(16, size))
    names = op_names(converted)
    assert names[: 2 if sliced else 1] == (
        ["STRIDED_SLICE", "SPACE_TO_DEPTH"] if sliced else ["SPACE_TO_DEPTH"]
    )
    plain = plain_stem(converted)
    assert "SPACE_TO_DEPTH" not in op_names(plain) and "STRIDED_SLICE" not in op_names(plain)
    assert inspect_bytes(plain).param_count < inspect_bytes(converted).param_count  # zeros gone
    x = int8_inputs(12, size)
    np.testing.assert_array_equal(outputs(converted, x), outputs(plain, x))
    # a batch of views in one invoke: every image goes through (a slice that kept only the
    # first one made flip fusion embed the crop twice)
    one_invoke = batched_outputs(converted, x[:4])
    assert one_invoke.shape[0] == 4
    np.testing.assert_array_equal(one_invoke, outputs(plain, x[:4]))
    again, note = space_to_depth_stem(plain)
    assert note is not None and f"{7}x{7}/{stride}" in note
    np.testing.assert_array_equal(outputs(again, x), outputs(converted, x))
    assert space_to_depth_stem(converted) == (converted, None)  # already rewritten


@pytest.mark.parametrize("mode", ["float32", "dynamic"])
def test_float_input_stems_are_rewritten_too(mode):
    size = 38
    converted = convert(tiny_encoder(size, 2), mode)
    assert "SPACE_TO_DEPTH" in op_names(converted)
    x = faces(6, size)
    np.testing.assert_allclose(
        outputs(converted, x), outputs(plain_stem(converted), x), rtol=0, atol=1e-5
    )


def test_a_same_padded_stem_is_left_as_it_is():
    size = 32
    converted = convert(tiny_encoder(size, 2, padding="same"), "int8", faces(8, size))
    assert "SPACE_TO_DEPTH" not in op_names(converted)
    assert space_to_depth_stem(converted)[1] is None


def test_kernel_blocks_round_trip_and_keep_every_weight():
    kernel = np.random.default_rng(0).integers(-127, 128, (5, 7, 7, 3)).astype(np.int8)
    for stride in (2, 3, 4):
        blocks = to_blocks(kernel, stride)
        kk = -(-7 // stride)
        assert blocks.shape == (5, kk, kk, 3 * stride * stride)
        assert np.array_equal(np.sort(blocks[blocks != 0]), np.sort(kernel[kernel != 0]))
        np.testing.assert_array_equal(from_blocks(blocks, stride, 7), kernel)


def test_plain_stem_passes_what_is_not_a_rewritten_model_through():
    for data in (b"", b"not a model at all", b"\x00\x00\x00\x00TFL3garbage"):
        assert plain_stem(data) == data


@pytest.mark.parametrize("name", ["dlib-resnet-v1", "doorface-small"])
def test_shipped_models_carry_the_rewrite_and_compute_their_plain_network(name, astronaut_bgr):
    import cv2

    data = (MODELS / f"{name}.tflite").read_bytes()
    assert op_names(data)[:2] in (
        ["SPACE_TO_DEPTH", "CONV_2D"],
        ["STRIDED_SLICE", "SPACE_TO_DEPTH"],
    )
    plain = plain_stem(data)
    assert op_names(plain)[0] == "CONV_2D"
    chip = cv2.resize(astronaut_bgr[0:300, 100:400, ::-1], (150, 150))  # a real face, RGB
    chips = np.stack([chip, chip[:, ::-1], chip // 3])
    x = (chips.astype(np.int16) - 128).astype(np.int8)  # the models' input: pixels - 128
    np.testing.assert_array_equal(outputs(data, x), outputs(plain, x))
    np.testing.assert_array_equal(batched_outputs(data, x), outputs(plain, x))
