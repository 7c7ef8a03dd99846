"""The LiteRT interpreter, loaded one way for the encoder and the detector (no TensorFlow).

LiteRT (``ai-edge-litert``) is TensorFlow Lite's maintained successor: wheels for x86_64 and
aarch64 on Python 3.10+, XNNPACK for float and int8 models. ``tflite-runtime`` is used only
where LiteRT is not installed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from edge.errors import ModelError


def interpreter_class() -> Any:
    """LiteRT's Interpreter, or tflite-runtime's where only that is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ImportError:
            raise ModelError(
                "no TFLite runtime: pip install ai-edge-litert (or doorface[edge])"
            ) from None
    return Interpreter


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hide the runtime's native INFO lines ("Created TensorFlow Lite XNNPACK delegate") that
    would otherwise break one-line CLI output. Errors still arrive as Python exceptions."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
