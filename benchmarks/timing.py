"""Timing pipelines against each other on a shared, noisy machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def interleaved_ms(
    runs: dict[str, Callable[[Any], object]], inputs: Sequence[Any], block: int = 5
) -> dict[str, float]:
    """Median milliseconds of each ``runs[name](x)`` over ``inputs``, the pipelines taking
    turns block by block: ``block`` inputs through one, then the same through the next.

    A shared machine's speed drifts over minutes, so times measured minutes apart do not make
    a ratio; taking turns puts the drift on every pipeline alike. Turns of one input each would
    bias the other way: a 200 ms dlib frame evicts the caches a 5 ms pipeline runs from, so
    each block starts with one untimed run of its first input (warm, as in a loop of frames).
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for start in range(0, len(inputs), block):
        chunk = inputs[start : start + block]
        for name, run in runs.items():
            run(chunk[0])  # warm: caches, and any lazy set-up of this input's size
            for x in chunk:
                t0 = time.perf_counter()
                run(x)
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}
