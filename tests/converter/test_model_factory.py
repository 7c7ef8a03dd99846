"""tests/model_factory.py gives the edge tests a real int8 model + manifest, quickly."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_make_tiny_int8_model(tmp_path: Path) -> None:
    from converter.inspect import inspect_model
    from edge.embedder import Embedder
    from tests.model_factory import astronaut_faces, make_tiny_int8_model

    start = time.monotonic()
    path = make_tiny_int8_model(tmp_path, input_size=40)
    assert time.monotonic() - start < 30
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert inspect_model(path).int8_violations() == []
    embedder = Embedder(path)
    assert embedder.input_size == 40 and embedder.manifest.quantization == "int8"
    emb = embedder.embed(astronaut_faces(40, 3))
    assert emb.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
