"""Which per-person score to match with: mean template, nearest sample, or the better of both.

    .venv/bin/python benchmarks/bench_matching.py [--model M.tflite] [--people 40] [--enrol 3]

Open-set identification on LFW people of ``pairsDevTest.txt`` (never trained on): ``--people``
people with enough photos are enrolled from ``--enrol`` photos each; their other photos must
come back with the right name, and photos of as many other people must come back unknown.
Reported at the model's calibrated threshold and the default margin, per strategy: correct
identification rate, wrong-name rate, and false-accept rate for strangers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import markdown_table, write_section
from benchmarks.bench_vs_dlib import PAIRS
from benchmarks.frames import LFW
from edge.detectors import TRAINING_DETECTOR, create_detector
from edge.embedder import Embedder
from edge.errors import DoorfaceError
from edge.gallery import STORED_CROP_SIZE, Gallery
from edge.matching import STRATEGIES, Matcher
from edge.pipeline import resolve_model
from edge.preprocess import face_crop_from_file
from trainer.data import identification_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--enrol", type=int, default=3)
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument(
        "--instant-above", type=float, default=0.1, help="the daemon's single-frame bar"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    model = resolve_model(args.model)
    embedder = Embedder(model)
    detector = create_detector(TRAINING_DETECTOR)  # whole photos, as the trainer cuts them
    files, labels = identification_set(PAIRS, LFW, per_person=12)
    names, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng(0)
    rich = rng.permutation(names[counts >= args.enrol + 2])[: args.people]
    strangers = rng.permutation(names[~np.isin(names, rich)])[: args.people * 3]

    def embed(paths: list[Path]) -> np.ndarray:
        crops = []
        for p in paths:
            try:
                crops.append(
                    face_crop_from_file(
                        p, detector, embedder.input_size, embedder.preprocessing
                    ).crop
                )
            except DoorfaceError:
                continue
        return embedder.embed(np.stack(crops))

    gallery = Gallery.create(
        "bench.npz", embedder.model_id, embedder.input_size, embedder.embedding_size
    )
    probes, truth = [], []
    for name in rich:
        paths = [f for f, lab in zip(files, labels, strict=True) if lab == name]
        enrol = embed(paths[: args.enrol])
        gallery.enroll(
            name,
            np.zeros((len(enrol), STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8),
            enrol,
            [""] * len(enrol),
        )
        rest = embed(paths[args.enrol :])
        probes.append(rest)
        truth += [name] * len(rest)
    stranger_emb = embed(
        [next(f for f, lab in zip(files, labels, strict=True) if lab == s) for s in strangers]
    )
    probes_arr = np.concatenate(probes)
    rows = []
    for strategy in STRATEGIES:
        m = Matcher(gallery, embedder.scoring, args.margin, strategy)
        known = m.match_many(probes_arr)
        unknown = m.match_many(stranger_emb)
        correct = np.mean([r.name == t for r, t in zip(known, truth, strict=True)])
        wrong = np.mean(
            [r.name is not None and r.name != t for r, t in zip(known, truth, strict=True)]
        )
        false_accept = np.mean([r.name is not None for r in unknown])
        bar = m.threshold + args.instant_above
        instant_right = np.mean(
            [r.name == t and r.score >= bar for r, t in zip(known, truth, strict=True)]
        )
        instant_wrong = np.mean(
            [r.name not in (None, t) and r.score >= bar for r, t in zip(known, truth, strict=True)]
        )
        instant_stranger = np.mean([r.name is not None and r.score >= bar for r in unknown])
        rows.append(
            [
                strategy,
                f"{correct:.3f}",
                f"{wrong:.3f}",
                f"{false_accept:.3f}",
                f"{instant_right:.3f}",
                f"{instant_wrong:.3f}",
                f"{instant_stranger:.3f}",
            ]
        )
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            f"Model `{model.name}`, threshold {embedder.scoring.threshold:.3f}, margin {args.margin}. {len(rich)} LFW "
            f"test-pair people enrolled from {args.enrol} photos each; {len(probes_arr)} other photos of them; "
            f"{len(stranger_emb)} photos of {len(strangers)} people not enrolled.",
            "",
            markdown_table(
                [
                    "strategy",
                    "right name",
                    "wrong name",
                    "stranger accepted",
                    "right name, single-frame bar",
                    "wrong name, single-frame bar",
                    "stranger accepted, single-frame bar",
                ],
                rows,
            ),
            "",
            f"Single-frame bar: score >= threshold + {args.instant_above:g} "
            f"(`tracking.instant_above`), where the daemon names a person from one frame; below it "
            f"a name needs 3 agreeing frames. One photo per decision here, no multi-frame help.",
        ]
    )
    print(text)
    if not args.no_write:
        write_section("matching", "Matching strategy (open-set identification on LFW)", text)


if __name__ == "__main__":
    main()
