"""Shared fixtures. Data from ../shared is required in CI (CI=true): absent there, tests fail."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOORFACE_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"


def require(path: Path) -> Path:
    """Return path, or fail in CI / skip elsewhere when it is missing."""
    if path.exists():
        return path
    message = f"{path} is missing (../shared data)"
    if os.environ.get("CI"):
        pytest.fail(message + ": CI must have it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return require(DATA / "lfw")


@pytest.fixture(scope="session")
def celeba_dir() -> Path:
    return require(DATA / "celeba-subset")


@pytest.fixture(scope="session")
def pairs_dev_test() -> Path:
    return require(DATA / "lfw-view1" / "pairsDevTest.txt")


@pytest.fixture(scope="session")
def pairs_dev_train() -> Path:
    return require(DATA / "lfw-view1" / "pairsDevTrain.txt")


@pytest.fixture(scope="session")
def yunet_path() -> Path:
    """The YuNet ONNX shipped inside the edge package."""
    from edge.detectors.yunet import SHIPPED_MODEL

    return SHIPPED_MODEL


@pytest.fixture(scope="session")
def yunet():
    """The default detector: the shipped YuNet at the edge's default settings."""
    from edge.detectors import create_detector

    return create_detector()


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins), a real face shipped with a package."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])


@pytest.fixture(scope="session")
def trainer_arch_model(tmp_path_factory) -> Path:
    """An int8 ``.tflite`` of the trainer's own encoder architecture (random weights)."""
    from tests.model_factory import make_trainer_arch_int8_model

    return make_trainer_arch_int8_model(tmp_path_factory.mktemp("arch64"))
