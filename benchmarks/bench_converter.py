"""Float32 vs float16 vs dynamic-range vs full-int8 TFLite of one encoder: size, LFW accuracy,
cosine agreement with Keras, LiteRT latency per face (1 and 2 threads).

    .venv/bin/python -m benchmarks.bench_converter [--model runs/default/encoder.keras]

Accuracy: LFW View 1; the threshold of each file is chosen on pairsDevTrain and applied to
pairsDevTest (plus 10-fold on DevTest). Calibration faces come from the CelebA subset, which is
disjoint from LFW, so no test person leaks into the int8 ranges. Every crop goes through the
edge's preprocessing and every TFLite embedding through edge.embedder.Embedder. Latency: median
of ``--runs`` single-face ``Embedder.embed`` calls (input quantisation included) after warm-up,
all four files measured in the same process, ratios against float32 of the same run.
Writes its section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: The four --mode values, plus int8 with per-tensor weight scales (--per-tensor).
VARIANTS = ("int8", "int8 per-tensor", "float16", "dynamic", "float32")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOORFACE_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "runs" / "default" / "encoder.keras")
    p.add_argument("--calibration", type=Path, default=DATA / "celeba-subset")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--images", type=Path, default=DATA / "lfw")
    p.add_argument("--pairs-train", type=Path, default=DATA / "lfw-view1" / "pairsDevTrain.txt")
    p.add_argument("--pairs-test", type=Path, default=DATA / "lfw-view1" / "pairsDevTest.txt")
    p.add_argument("--runs", type=int, default=300, help="timed invokes per file and thread count")
    p.add_argument("--note", default="", help="a line about the model, printed in the section")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    return p.parse_args(argv)


def _latency_ms(embedder, crop: np.ndarray, runs: int) -> float:
    for _ in range(20):
        embedder.embed(crop)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        embedder.embed(crop)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _args(argv)
    from benchmarks._report import markdown_table, write_section
    from converter.calibration import collect_faces
    from converter.convert import encoder_shapes, load_encoder
    from converter.embed import (
        cosine_stats,
        crop_files,
        keras_embeddings,
        pair_index,
        pair_scores,
    )
    from converter.inspect import xnnpack_delegation
    from converter.pipeline import QuantizeOptions, quantize
    from edge.detectors import TRAINING_DETECTOR, create_detector
    from edge.embedder import Embedder
    from trainer.evaluate import accuracy_at, best_threshold, kfold_accuracy, read_pairs

    model = load_encoder(args.model)
    size, _ = encoder_shapes(model, str(args.model))
    detector = create_detector(TRAINING_DETECTOR)
    train_pairs = read_pairs(args.pairs_train, args.images)
    test_pairs = read_pairs(args.pairs_test, args.images)
    files = sorted({p for a, b, _ in train_pairs + test_pairs for p in (a, b)})
    print(f"cropping {len(files)} LFW images at {size}px ...", file=sys.stderr)
    crops, ok = crop_files(files, size, detector)
    tr, te = pair_index(train_pairs, files), pair_index(test_pairs, files)
    calib, _ = collect_faces(args.calibration, size, args.samples, detector=detector)

    def accuracy(emb: np.ndarray) -> tuple[float, float, float]:
        scores = {}
        for name, (ia, ib, same) in (("train", tr), ("test", te)):
            valid = ok[ia] & ok[ib]
            scores[name] = (np.where(valid, pair_scores(emb, ia, ib), -1.0), same)
        thr = best_threshold(*scores["train"])
        return accuracy_at(*scores["test"], thr), kfold_accuracy(*scores["test"])[0], thr

    ref = keras_embeddings(model, crops)
    keras_acc, keras_10, keras_thr = accuracy(ref)
    rows, results = [], {}
    crop = crops[np.argmax(ok)][None]
    with tempfile.TemporaryDirectory(prefix="bench-converter-") as tmp:
        for mode in VARIANTS:
            out = Path(tmp) / f"{mode.replace(' ', '_')}.tflite"
            t = time.perf_counter()
            quantize(
                args.model,
                None,
                out,
                QuantizeOptions(
                    mode=mode.split()[0],
                    threshold=0.5,
                    progress=False,
                    per_channel=mode != "int8 per-tensor",
                ),
                faces=calib if mode.startswith("int8") else None,
            )
            convert_s = time.perf_counter() - t
            emb = Embedder(out).embed(crops)
            acc, acc10, thr = accuracy(emb)
            cos = cosine_stats(ref[ok], emb[ok])
            lat = {n: _latency_ms(Embedder(out, threads=n), crop, args.runs) for n in (1, 2)}
            results[mode] = dict(
                size=out.stat().st_size,
                acc=acc,
                acc10=acc10,
                thr=thr,
                cos=cos,
                lat=lat,
                convert_s=convert_s,
                partitions=xnnpack_delegation(out).partitions,
            )
            print(mode, results[mode], file=sys.stderr)
    base = results["float32"]
    for mode in VARIANTS:
        r = results[mode]
        rows.append(
            [
                mode,
                f"{r['size'] / 1024:.0f} KiB",
                f"{r['size'] / base['size']:.0%}",
                f"{r['acc']:.2%}",
                f"{r['acc10']:.2%}",
                f"{r['thr']:.3f}",
                f"{r['cos']['mean']:.4f} / {r['cos']['p1']:.4f} / {r['cos']['min']:.4f}",
                f"{r['lat'][1]:.3f} ms ({r['lat'][1] / base['lat'][1]:.2f}x)",
                f"{r['lat'][2]:.3f} ms ({r['lat'][2] / base['lat'][2]:.2f}x)",
                r["partitions"],
            ]
        )
    table = markdown_table(
        [
            "file",
            "size",
            "vs float32",
            "DevTest acc (thr from DevTrain)",
            "DevTest 10-fold",
            "threshold",
            "cosine vs Keras mean / p1 / min",
            "latency 1 thread (x float32)",
            "latency 2 threads (x float32)",
            "XNNPACK partitions",
        ],
        rows,
    )
    verdicts = []
    for variant in ("int8", "int8 per-tensor"):
        r = results[variant]
        drop = round((base["acc"] - r["acc"]) * 100, 6)  # points; 1000 pairs: multiples of 0.1
        ratio = r["size"] / base["size"]
        verdicts.append(
            f"{variant} vs float32: accuracy {-drop:+.2f} points (target: within 0.5 -> "
            f"{'met' if abs(drop) <= 0.5 else 'NOT met'}), file {ratio:.1%} of float32 "
            f"(target <= 30% -> {'met' if ratio <= 0.3 else 'NOT met'})."
        )
    verdict = "\n".join(f"- {v}" for v in verdicts)
    body = "\n".join(
        [
            f"Model: `{args.model}` ({size}x{size} input). {args.note}".strip(),
            f"Keras float reference: DevTest accuracy {keras_acc:.2%} (threshold {keras_thr:.3f} "
            f"from DevTrain), 10-fold {keras_10:.2%}. Faces found in {ok.sum()}/{len(ok)} images "
            f"(pairs with a missing face count as 'different'). Calibration: {len(calib)} CelebA "
            f"faces. Latency: median of {args.runs} single-face `Embedder.embed` calls, LiteRT "
            "(XNNPACK), this machine.",
            "",
            table,
            "",
            verdict,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("converter", "Converter: float32 / float16 / dynamic / int8", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
