import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edge.embedder import Embedder, mirrored, zoomed_in
from edge.errors import ModelError
from edge.manifest import load_manifest, manifest_path_for


def test_embeds_unit_vectors_of_manifest_size(tiny_model):
    embedder = Embedder(tiny_model, threads=2)
    m = load_manifest(manifest_path_for(tiny_model))
    assert embedder.input_size == m.input_height == 32
    crops = np.random.default_rng(0).integers(0, 255, size=(3, 32, 32, 3), dtype=np.uint8)
    out = embedder.embed(crops)
    assert out.shape == (3, m.embedding_size) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(crops[1]), out[1:2], atol=1e-6)  # single crop
    assert embedder.model_id == m.tflite_sha256


def test_int8_quantisation_is_read_from_the_model(tiny_model):
    m = load_manifest(manifest_path_for(tiny_model))
    assert m.quantization == "int8"
    assert m.input_quant.dtype == "int8" and m.output_quant.dtype == "int8"
    embedder = Embedder(tiny_model)
    assert embedder._in["dtype"] == np.int8 and embedder._out["dtype"] == np.int8
    assert embedder._in_scale == pytest.approx(m.input_quant.scale)


def test_flip_fusion_is_the_renormalised_mean_of_crop_and_mirror(tiny_model):
    plain, fused = Embedder(tiny_model), Embedder(tiny_model, flip=True)
    crops = np.random.default_rng(1).integers(0, 255, size=(4, 32, 32, 3), dtype=np.uint8)
    a, b = plain.embed(crops), plain.embed(crops[:, :, ::-1])
    mean = (a + b) / 2
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    np.testing.assert_allclose(fused.embed(crops), expected, atol=1e-6)
    assert np.all(np.sum(a * b, axis=1) < 0.9999)  # the mirror really is another input
    symmetric = np.concatenate([crops[:, :, :16], crops[:, :, :16][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(fused.embed(symmetric), plain.embed(symmetric), atol=1e-6)


def test_a_face_s_views_run_as_one_batch_where_the_model_takes_one(trainer_arch_model):
    """dlib's encoder takes a batch of views (one invoke per face, the numbers unchanged);
    the trainer's own architecture fixes its batch at 1 in a reshape and runs its views one by
    one."""
    from edge.pipeline import resolve_model

    shipped = resolve_model(None)
    crops = np.random.default_rng(3).integers(0, 255, size=(2, 150, 150, 3), dtype=np.uint8)
    plain, fused = Embedder(shipped), Embedder(shipped, flip=True)
    assert (plain._batch, fused._batch) == (1, 2)
    total = plain.embed(crops) + plain.embed(crops[:, :, ::-1])
    expected = total / np.linalg.norm(total, axis=1, keepdims=True)
    np.testing.assert_allclose(fused.embed(crops), expected, atol=1e-6)
    small = trainer_arch_model
    assert Embedder(small, flip=True)._batch == 1
    crops = crops[:, 43:107, 43:107]  # its 64 px input
    total = Embedder(small).embed(crops) + Embedder(small).embed(crops[:, :, ::-1])
    expected = total / np.linalg.norm(total, axis=1, keepdims=True)
    np.testing.assert_allclose(Embedder(small, flip=True).embed(crops), expected, atol=1e-6)


def test_mirrored_flips_left_right():
    crops = np.random.default_rng(4).integers(0, 255, size=(2, 8, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(mirrored(crops), crops[:, :, ::-1])


def test_zoomed_in_enlarges_the_centre():
    crop = np.zeros((1, 100, 100, 3), np.uint8)
    crop[0, 4:96, 4:96] = 200  # the centre 92 px bright, a 4 px dark frame around it
    out = zoomed_in(crop, 0.08)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert out.min() == 200  # the frame is cut off, the centre fills the crop
    np.testing.assert_array_equal(crop[0, 0], 0)  # the input is not modified


def test_zoom_averages_each_view_and_its_zoomed_copy(tiny_model):
    plain = Embedder(tiny_model)
    crops = np.random.default_rng(2).integers(0, 255, size=(3, 32, 32, 3), dtype=np.uint8)
    mirror = crops[:, :, ::-1]
    views = [crops, mirror, zoomed_in(crops), zoomed_in(np.ascontiguousarray(mirror))]
    total = sum(plain.embed(v) for v in views)
    expected = total / np.linalg.norm(total, axis=1, keepdims=True)
    both = Embedder(tiny_model, flip=True, zoom=True)
    np.testing.assert_allclose(both.embed(crops), expected, atol=1e-5)
    alone = plain.embed(crops) + plain.embed(zoomed_in(crops))
    np.testing.assert_allclose(
        Embedder(tiny_model, zoom=True).embed(crops),
        alone / np.linalg.norm(alone, axis=1, keepdims=True),
        atol=1e-5,
    )
    assert np.all(
        np.sum(both.embed(crops) * Embedder(tiny_model, flip=True).embed(crops), 1) < 0.9999
    )


def test_wrong_crop_shape_is_rejected(tiny_model):
    with pytest.raises(ValueError, match=r"expected crops of shape \(N, 32, 32, 3\)"):
        Embedder(tiny_model).embed(np.zeros((1, 64, 64, 3), np.uint8))


def _copy(tiny_model, tmp_path, name="m"):
    dst = tmp_path / f"{name}.tflite"
    shutil.copy(tiny_model, dst)
    shutil.copy(manifest_path_for(tiny_model), manifest_path_for(dst))
    return dst


def test_missing_model(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        Embedder(tmp_path / "nope.tflite")
    os.mkfifo(tmp_path / "pipe.tflite")
    with pytest.raises(ModelError, match=r"pipe\.tflite: not a regular file \(a named pipe\)$"):
        Embedder(tmp_path / "pipe.tflite")


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "fake.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a TFLite model"):
        Embedder(path)


def test_truncated_model(tiny_model, tmp_path):
    path = _copy(tiny_model, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="sha256 differs"):
        Embedder(path)
    with pytest.raises(ModelError, match="cannot load it"):
        Embedder(path, verify_sha256=False)


def test_missing_and_bad_manifest(tiny_model, tmp_path):
    path = _copy(tiny_model, tmp_path)
    manifest = manifest_path_for(path)
    data = json.loads(manifest.read_text())
    data["input"]["height"] = "tall"
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="input.height: must be int"):
        Embedder(path)
    data["input"]["height"] = 64
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="input shape"):
        Embedder(path)
    manifest.unlink()
    with pytest.raises(ModelError, match="manifest not found"):
        Embedder(path)


def test_other_preprocessing_version_is_refused(tiny_model, tmp_path):
    path = _copy(tiny_model, tmp_path)
    manifest = manifest_path_for(path)
    data = json.loads(manifest.read_text())
    data["input"]["preprocessing"] = "someone-elses-crop"
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="made for preprocessing 'someone-elses-crop'"):
        Embedder(path)


def test_runs_without_tensorflow_in_the_process(tiny_model):
    code = (
        "import sys, numpy as np\n"
        "from edge.embedder import Embedder\n"
        f"e = Embedder({str(tiny_model)!r})\n"
        "v = e.embed(np.zeros((1, 32, 32, 3), np.uint8))\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(v.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1, 128)"
