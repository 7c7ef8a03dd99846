"""Edge pipeline speed and detection recall, with face_recognition (dlib) measured beside it.

    .venv/bin/python benchmarks/bench_edge.py [--model M.tflite] [--frames 200] [--recall 1000]

Per detector backend and thread count: median per-stage latency (detect, align, embed,
match) and end-to-end frames/s on 640x480 frames with one face; detection recall on LFW
images. face_recognition's own pipeline (HOG detector + 128-d ResNet) runs on the same frames
in the same process, so the speed ratio is measured, not quoted. Writes its section of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import markdown_table, write_section
from benchmarks.frames import door_frames, lfw_files
from benchmarks.timing import interleaved_ms
from converter.yunet import OpenCVYuNet
from edge.detectors import Detector, DetectorSettings, create_detector
from edge.detectors.yunet import SHIPPED_MODEL, YuNetDetector
from edge.embedder import Embedder
from edge.gallery import STORED_CROP_SIZE, Gallery
from edge.matching import Matcher
from edge.pipeline import Recognizer, resolve_model


def synthetic_gallery(embedder: Embedder, people: int = 10, per: int = 5) -> Gallery:
    rng = np.random.default_rng(0)
    g = Gallery.create("bench.npz", embedder.model_id, embedder.input_size, embedder.embedding_size)
    v = rng.normal(size=(people * per, embedder.embedding_size)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    crops = np.zeros((per, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8)  # none kept
    for i in range(people):
        g.enroll(f"p{i}", crops, v[i * per : (i + 1) * per], [""] * per)
    return g


def _on_opencv(settings: DetectorSettings) -> Detector:
    """The shipped YuNet with OpenCV's DNN module in place of LiteRT, as the edge ran it until
    2026-12-07: the peer of the LiteRT file in the same run."""
    return YuNetDetector(settings, net=lambda: OpenCVYuNet(SHIPPED_MODEL.with_suffix(".onnx")))


def detectors(detect_width: int) -> dict[str, Callable[[], Detector]]:
    """The shipped YuNet, the same on OpenCV's DNN module (what LiteRT saves), the same without
    its refining pass (what the pass costs), Haar."""
    yunet = DetectorSettings(detect_width=detect_width)
    return {
        "yunet": lambda: create_detector(yunet),
        "yunet on OpenCV DNN": lambda: _on_opencv(yunet),
        "yunet unrefined": lambda: create_detector(replace(yunet, refine_px=0)),
        "haar": lambda: create_detector(
            DetectorSettings(backend="haar", detect_width=detect_width)
        ),
    }


def time_pipeline(recognizer: Recognizer, frames: list[np.ndarray]) -> dict[str, float]:
    for frame in frames[:5]:
        recognizer.recognize_faces(frame)
    stages: dict[str, list[float]] = {
        "detect": [],
        "align": [],
        "embed": [],
        "match": [],
        "total": [],
    }
    faces = 0
    for frame in frames:
        t0 = time.perf_counter()
        faces += len(recognizer.recognize_faces(frame))
        stages["total"].append(time.perf_counter() - t0)
        for k, v in recognizer.timings.items():
            stages[k].append(v)
    out = {k: statistics.median(v) * 1000 for k, v in stages.items()}
    out["fps"] = 1000 / out["total"]
    out["faces_per_frame"] = faces / len(frames)
    return out


def time_face_recognition(frames: list[np.ndarray]) -> dict[str, float]:
    totals, detect, faces = [], [], 0
    for frame in frames:
        t0 = time.perf_counter()
        found, detect_s = face_recognition_frame(frame)
        totals.append(time.perf_counter() - t0)
        detect.append(detect_s)
        faces += found
    total = statistics.median(totals) * 1000
    return {
        "detect": statistics.median(detect) * 1000,
        "total": total,
        "fps": 1000 / total,
        "faces_per_frame": faces / len(frames),
    }


def face_recognition_frame(frame: np.ndarray) -> tuple[int, float]:
    """face_recognition's whole pipeline on one BGR frame (what its users call): the faces it
    found and the seconds its detector took."""
    import face_recognition

    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    t0 = time.perf_counter()
    boxes = face_recognition.face_locations(rgb)  # HOG, 1x upsampling: its default
    detect_s = time.perf_counter() - t0
    face_recognition.face_encodings(rgb, boxes)
    return len(boxes), detect_s


def recall(detector: Detector, files: list[Path]) -> float:
    """Share of LFW photos where a detected face covers the photo's centre (the labelled one)."""
    hits = 0
    for path in files:
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        hits += any(
            f.box[0] <= w / 2 <= f.box[0] + f.box[2] and f.box[1] <= h / 2 <= f.box[1] + f.box[3]
            for f in detector.detect(image)
        )
    return hits / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="encoder .tflite (default: the shipped model)")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--recall", type=int, default=1000, help="LFW images for detection recall")
    parser.add_argument("--detect-width", type=int, default=320)
    parser.add_argument("--no-dlib", action="store_true", help="skip face_recognition")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    model = resolve_model(args.model)
    frames = door_frames(args.frames, seed=1)
    rows, results = [], {}
    for threads in (1, 2):
        cv2.setNumThreads(threads)
        embedder = Embedder(model, threads=threads)
        matcher = Matcher(synthetic_gallery(embedder), embedder.scoring)
        for name, make in detectors(args.detect_width).items():
            r = time_pipeline(Recognizer(make(), embedder, matcher), frames)
            results[(name, threads)] = r
            rows.append(
                [
                    f"doorface {name}",
                    threads,
                    r["detect"],
                    r["align"],
                    r["embed"],
                    r["match"],
                    r["total"],
                    r["fps"],
                    r["faces_per_frame"],
                ]
            )
            print(rows[-1], flush=True)
    if not args.no_dlib:
        cv2.setNumThreads(1)
        peers = frames[: max(20, args.frames // 5)]
        fr = time_face_recognition(peers)
        shipped = Recognizer(detectors(args.detect_width)["yunet"](), Embedder(model), matcher)
        turns = {"ours": shipped.recognize_faces, "theirs": face_recognition_frame}
        fr |= {f"{k}_interleaved": v for k, v in interleaved_ms(turns, peers).items()}
        results[("face_recognition", 1)] = fr
        rows.append(
            [
                "face_recognition (HOG + ResNet)",
                1,
                fr["detect"],
                "-",
                fr["total"] - fr["detect"],
                "-",
                fr["total"],
                fr["fps"],
                fr["faces_per_frame"],
            ]
        )
        print(rows[-1], flush=True)
    cv2.setNumThreads(1)
    files = lfw_files(args.recall, seed=2)
    recall_rows = [
        [name, f"{recall(make(), files):.3f}"]
        for name, make in detectors(0).items()
        if name != "yunet unrefined"  # at full size there is nothing to refine
    ]
    print(recall_rows, flush=True)

    e = Embedder(model)
    body = [
        f"Model `{model.name}` ({e.manifest.quantization}, {e.input_size}x{e.input_size} input, "
        f"{model.stat().st_size / 1024:.0f} KiB). {len(frames)} frames of 640x480, one LFW face each "
        f"(110-180 px), pasted on a synthetic scene (`benchmarks/frames.py`); detection on a copy "
        f"downscaled to {args.detect_width} px wide (YuNet then refines each face at full "
        "resolution, `detector.refine_px`; `yunet unrefined` without that pass; `yunet on "
        "OpenCV DNN`: the same ONNX run by `cv2.FaceDetectorYN`, as until 2026-12-07). Times are "
        "medians in milliseconds; matching against a 10-person, 50-sample gallery. "
        "`threads` = OpenCV threads = LiteRT threads.",
        "",
        markdown_table(
            [
                "pipeline",
                "threads",
                "detect",
                "align",
                "embed",
                "match",
                "total",
                "frames/s",
                "faces/frame",
            ],
            rows,
        ),
        "",
    ]
    if ("face_recognition", 1) in results:
        fr = results[("face_recognition", 1)]
        ours_ms, theirs_ms = fr["ours_interleaved"], fr["theirs_interleaved"]
        body.append(
            f"**Ratio, 1 thread:** doorface + YuNet runs {theirs_ms / ours_ms:.0f}x the "
            f"frames/s of face_recognition's pipeline on the same frames (the two taking turns, "
            f"five frames each, `benchmarks/timing.py`: {ours_ms:.2f} vs {theirs_ms:.1f} ms per "
            f"frame; from the table's rows, measured minutes apart: "
            f"{results[('yunet', 1)]['fps'] / fr['fps']:.0f}x); with Haar "
            f"{results[('haar', 1)]['fps'] / fr['fps']:.0f}x. YuNet's detection on LiteRT "
            f"{results[('yunet', 1)]['detect']:.2f} ms, on OpenCV's DNN module "
            f"{results[('yunet on OpenCV DNN', 1)]['detect']:.2f} ms (the same faces)."
        )
        body.append("")
    body += [
        f"Detection recall on {len(files)} random LFW photos (250x250, full size; hit = a box covering "
        "the photo's centre, where LFW's labelled face is):",
        "",
        markdown_table(["detector", "recall"], recall_rows),
    ]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("edge", "Edge pipeline: per-stage latency, frames/s, detection recall", text)


if __name__ == "__main__":
    main()
