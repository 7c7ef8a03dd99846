"""The shipped encoders with and without the stem rewrite (converter.stem): time per face, one
LiteRT thread, and whether the two give the same output.

    .venv/bin/python -m benchmarks.bench_stem [--rounds 30] [--no-write]

For each model in ``edge/models``, one invoke per face of its crop and mirror (the edge's
default flip fusion), the shipped file (stem as space-to-depth + a stride-1 convolution) and :func:`converter.stem.plain_stem` of it (the strided 7x7 convolution as
trained and as the files were until the rewrite) run in one process, taking turns
(benchmarks.timing: blocks of 5 invokes, each block after an untimed one), on the same
random int8 images (a convolution's time does not depend on the pixels; tests/converter/
test_stem.py compares the two on a real face). Outputs are compared byte for byte. Writes its
section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks._report import markdown_table, write_section
from benchmarks.timing import interleaved_ms
from converter.inspect import inspect_bytes
from converter.stem import plain_stem
from edge.litert import interpreter_class

MODELS = Path(__file__).resolve().parents[1] / "edge" / "models"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=30, help="blocks of 5 timed invokes per file")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    return p.parse_args(argv)


def _runner(data: bytes):
    """One invoke per face of its two views, as the edge runs with flip fusion (the default)."""
    interpreter = interpreter_class()(model_content=data, num_threads=1)
    image = interpreter.get_input_details()[0]
    into = image["index"]
    interpreter.resize_tensor_input(into, [2, *image["shape"][1:]])
    interpreter.allocate_tensors()
    out = interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(into, x)
        interpreter.invoke()
        return interpreter.get_tensor(out).copy()

    return run


def measure(name: str, rounds: int) -> list[object]:
    shipped = (MODELS / f"{name}.tflite").read_bytes()
    plain = plain_stem(shipped)
    runs = {"plain": _runner(plain), "rewritten": _runner(shipped)}
    report, plain_report = inspect_bytes(shipped), inspect_bytes(plain)
    rng = np.random.default_rng(0)
    size = report.input.shape[1]
    faces = rng.integers(-128, 128, (rounds * 5, size, size, 3), dtype=np.int8)
    inputs = [np.stack([face, face[:, ::-1]]) for face in faces]  # a crop and its mirror
    same = all(np.array_equal(runs["plain"](x), runs["rewritten"](x)) for x in inputs[:50])
    ms = interleaved_ms(runs, inputs)
    ops = [op.name for op in report.ops]
    stem = " + ".join(ops[: ops.index("CONV_2D") + 1])
    return [
        name,
        stem,
        f"{ms['plain']:.2f}",
        f"{ms['rewritten']:.2f}",
        f"{1 - ms['rewritten'] / ms['plain']:.0%}",
        "yes" if same else "**no**",
        f"{report.param_count - plain_report.param_count:,}",
    ]


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    rows = [measure(name, args.rounds) for name in ("dlib-resnet-v1", "doorface-small")]
    headers = [
        "model",
        "shipped stem",
        "ms per face (2 views), plain stem",
        "ms, rewritten",
        "saved",
        "same int8 output (50 inputs)",
        "constants added",
    ]
    table = markdown_table(headers, rows)
    print(table)
    if not args.no_write:
        body = (
            f"One LiteRT thread, the network only (no input quantisation), a face's crop and "
            f"its mirror in one invoke as the edge embeds them by default (flip fusion), "
            f"medians of {args.rounds * 5} invokes per file, the two forms of each model taking "
            f"turns (`benchmarks/bench_stem.py`; converter/stem.py says why).\n\n{table}\n"
        )
        write_section("stem", "The first convolution as space-to-depth", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
