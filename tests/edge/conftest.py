from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A real int8 .tflite + manifest (random weights) made through the converter's API."""
    from tests.model_factory import make_tiny_int8_model

    return make_tiny_int8_model(tmp_path_factory.mktemp("tiny-model"), input_size=32)
