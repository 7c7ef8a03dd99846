"""Trainer benchmark: loss variants at an equal time budget, accuracy vs training time, images/s.

Every variant trains on LFW minus the pairsDevTest people plus the CelebA subset (64x64, same
seed, same P x K batches), with pairsDevTest scored in inference mode after each epoch
(monitoring only: no model or threshold is chosen on it). The final models are then scored by
``trainer evaluate`` logic on pairsDevTest with the threshold chosen on pairsDevTrain. The main
run (``runs/default``, trained separately, see README) is added to the table and curve if present.

    .venv/bin/python -m benchmarks.bench_trainer --minutes 8 --threads 1
    .venv/bin/python -m benchmarks.bench_trainer --report-only   # re-write from existing runs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks._report import markdown_table, write_section

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LFW = DATA / "lfw"
CELEBA = DATA / "celeba-subset"
DEV_TEST = DATA / "lfw-view1" / "pairsDevTest.txt"
DEV_TRAIN = DATA / "lfw-view1" / "pairsDevTrain.txt"
CURVE = REPO / "docs" / "trainer_accuracy_vs_time.png"


def train_variant(loss: str, minutes: float, threads: int, out: Path, extra: list[str]) -> None:
    cmd = [
        sys.executable,
        "-m",
        "trainer.cli",
        "train",
        str(LFW),
        str(CELEBA),
        "--exclude-pairs",
        str(DEV_TEST),
        "--out",
        str(out),
        "--loss",
        loss,
        "--time-budget",
        str(minutes),
        "--threads",
        str(threads),
        "--steps-per-epoch",
        "50",
        "--monitor-pairs",
        str(DEV_TEST),
        "--monitor-root",
        str(LFW),
        "--quiet",
        *extra,
    ]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def evaluate_run(run: Path) -> dict:
    """pairsDevTest numbers of run/encoder.keras, threshold from pairsDevTrain (cached in run/)."""
    cached = run / "eval_devtest.json"
    model = run / "encoder.keras"
    if cached.exists() and cached.stat().st_mtime >= model.stat().st_mtime:
        result = json.loads(cached.read_text())
        if "one_shot" in result:
            return result
    from trainer.report import evaluate_model

    result = evaluate_model(model, LFW, DEV_TEST, threshold_pairs=DEV_TRAIN, progress=False)
    cached.write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=8.0, help="training budget per loss variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default="semihard,contrastive,koch")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench"))
    ap.add_argument("--main-run", default=str(REPO / "runs" / "default"))
    ap.add_argument("--main-label", default="default model (main run)")
    ap.add_argument("--report-only", action="store_true", help="do not train; report existing runs")
    ap.add_argument(
        "--extra-run",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also report this finished run (e.g. a longer budget); repeatable",
    )
    args = ap.parse_args(argv)

    runs: dict[str, Path] = {}
    for loss in args.variants.split(","):
        out = Path(args.out) / loss
        if not args.report_only:
            train_variant(loss, args.minutes, args.threads, out, [])
        if (out / "training.json").exists():
            runs[f"{loss} (no teacher)"] = out
    for item in args.extra_run:
        label, _, path = item.partition("=")
        if (Path(path) / "training.json").exists():
            runs[label] = Path(path)
    main_run = Path(args.main_run)
    if (main_run / "training.json").exists():
        runs[args.main_label] = main_run

    rows = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, run in runs.items():
        rec = json.loads((run / "training.json").read_text())
        hist = rec["history"]
        ev = evaluate_run(run)
        s = rec["settings"]
        teacher = rec.get("teacher") or {}
        setup = f"{s['loss']}" + (f" + {s['teacher']} teacher" if s["teacher"] != "none" else "")
        setup += f" + {s['head']}" if s["head"] != "none" else ""
        ips = [h["images_per_s"] for h in hist[1:]] or [h["images_per_s"] for h in hist]
        rows.append(
            [
                label,
                setup,
                rec["model"]["params"],
                rec["train_minutes"],
                hist[-1]["step"] if hist else 0,
                round(sum(ips) / max(1, len(ips)), 1),
                s["threads"],
                round(ev["kfold_accuracy"], 4),
                round(ev["accuracy_at_threshold"], 4),
                round(ev["threshold"], 3),
                round(ev["auc"], 4),
                round(ev["eer"], 4),
                round(ev["tar_at_far_1e-2"], 3),
                ev["one_shot"]["accuracy"] and round(ev["one_shot"]["accuracy"], 3),
                f"{teacher.get('faces_with_target', 0)}/{teacher.get('faces', 0)}"
                if teacher
                else "-",
            ]
        )
        ax.plot(
            [h["minutes"] for h in hist],
            [h.get("pairs_acc") for h in hist],
            marker=".",
            label=label,
        )
    ax.set_xlabel("training minutes (this machine)")
    ax.set_ylabel("pairsDevTest 10-fold accuracy (inference mode)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    CURVE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(CURVE, dpi=100)
    plt.close(fig)

    table = markdown_table(
        [
            "run",
            "loss",
            "params",
            "train min",
            "steps",
            "train images/s",
            "TF threads",
            "DevTest 10-fold acc",
            "DevTest acc @ DevTrain threshold",
            "threshold",
            "AUC",
            "EER",
            "TAR@FAR1e-2",
            "one-shot 100-way",
            "teacher targets",
        ],
        rows,
    )
    body = f"""Script: `benchmarks/bench_trainer.py --minutes {args.minutes} --threads {args.threads}`.
Data: LFW (deep-funneled) minus every person in pairsDevTest.txt, plus the CelebA subset; 5% of
identities held out for validation; YuNet-aligned 64x64 crops; P x K = 32 x 4 + 8 one-image
people per batch; AdamW, warmup + cosine LR over the time budget. The loss variants ("no teacher"
rows) had the same wall-clock budget of {args.minutes} min of training (graph tracing included)
with {args.threads} TensorFlow thread(s); other rows state their own budget ("train min") and
threads. "DevTest 10-fold acc": LFW View 1 test pairs, threshold chosen on the other 9 folds;
"@ DevTrain threshold": one threshold fit on pairsDevTrain.txt; "one-shot 100-way": one photo
of each of 100 pairsDevTest people enrolled, another photo of one of them identified (1,000
trials, chance 0.01).

{table}

![accuracy vs training time]({CURVE.relative_to(REPO / "docs").as_posix()})
"""
    write_section("trainer", "Trainer: losses, accuracy vs training time", body)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
