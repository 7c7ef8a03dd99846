"""Trainer benchmark: loss variants at an equal time budget, accuracy vs training time, images/s.

Every variant trains on LFW minus the pairsDevTest people plus the CelebA subset (64x64, same
seed, same P x K batches), with pairsDevTest scored in inference mode after each epoch
(monitoring only: no model or threshold is chosen on it). Each finished model is then scored
by ``trainer evaluate`` logic on pairsDevTest with the threshold chosen on pairsDevTrain.

Training folders (``runs/``) are not kept in the repository, so every reported run leaves a
small summary (settings, per-epoch curve, test numbers) in ``benchmarks/results/trainer/``:
the table and the accuracy-vs-time curve are rebuilt from those summaries, and a later run of
this script adds rows instead of losing the earlier ones.

    .venv/bin/python -m benchmarks.bench_trainer --minutes 6 --threads 2     # loss variants
    .venv/bin/python -m benchmarks.bench_trainer --minutes 15 --variants semihard,contrastive,koch,staged
    .venv/bin/python -m benchmarks.bench_trainer --report-only             # re-write the doc

The long no-teacher row is the trainer's defaults for 85 minutes, then added as a finished run
(the dlib-teacher row is ``scripts/make_default_model.sh``, the shipped model):

    D=../shared/data
    .venv/bin/trainer train $D/lfw $D/celeba-subset --out runs/semihard-85 --loss semihard \\
        --time-budget 85 --threads 2 --seed 0 --exclude-pairs $D/lfw-view1/pairsDevTest.txt \\
        --monitor-pairs $D/lfw-view1/pairsDevTest.txt --monitor-root $D/lfw
    .venv/bin/python -m benchmarks.bench_trainer --variants '' \\
        --add-run 'semihard, no teacher (85 min)=runs/semihard-85'
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from benchmarks._report import DOC, machine, markdown_table, write_section

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LFW = DATA / "lfw"
CELEBA = DATA / "celeba-subset"
DEV_TEST = DATA / "lfw-view1" / "pairsDevTest.txt"
DEV_TRAIN = DATA / "lfw-view1" / "pairsDevTrain.txt"
CURVE = REPO / "docs" / "trainer_accuracy_vs_time.png"
RESULTS = REPO / "benchmarks" / "results" / "trainer"
TARGETS = {"no teacher": 0.80, "dlib teacher": 0.92}  # issue targets, DevTest 10-fold accuracy


def train_variant(
    loss: str, minutes: float, threads: int, out: Path, extra: list[str] | None = None
) -> None:
    """One ``trainer train`` run of ``minutes``; ``extra`` adds or overrides options."""
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
        *(extra or []),
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


def summarise(label: str, run: Path, ev: dict) -> dict:
    """The numbers of one finished run that the report needs, small enough to commit."""
    rec = json.loads((run / "training.json").read_text())
    hist, s = rec["history"], rec["settings"]
    teacher = rec.get("teacher") or {}
    ips = [h["images_per_s"] for h in hist[1:]] or [h["images_per_s"] for h in hist]
    keys = ("kfold_accuracy", "kfold_std", "accuracy_at_threshold", "threshold", "auc", "eer")
    return {
        "label": label,
        "recorded": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "loss": s["loss"],
        "teacher": s["teacher"],
        "head": s["head"],
        "threads": s["threads"],
        "params": rec["model"]["params"],
        "input_size": s["input_size"],
        "width": s["width"],
        "teacher_margin_max": s.get("teacher_margin_max", 0.0),
        "init_from": s.get("init_from") or None,
        "train_minutes": rec["train_minutes"],
        "steps": hist[-1]["step"] if hist else 0,
        "images_per_s": round(sum(ips) / max(1, len(ips)), 1),
        "teacher_targets": f"{teacher['faces_with_target']}/{teacher['faces']}"
        if teacher
        else None,
        "history": [
            {k: h.get(k) for k in ("minutes", "step", "pairs_acc", "val_acc", "active_triplets")}
            for h in hist
        ],
        "devtest": {
            **{k: ev[k] for k in keys},
            "tar_at_far_1e-2": ev["tar_at_far_1e-2"],
            "tar_at_far_1e-3": ev["tar_at_far_1e-3"],
            "one_shot_100way": ev["one_shot"]["accuracy"],
        },
    }


def int8_ms_per_face(input_size: int, width: float, runs: int = 300) -> float:
    """What the architecture costs at the edge, whatever its weights: an untrained encoder of
    this shape converted to full-integer int8 (random faces as the representative set; op
    graph and kernels are those of a trained one), median LiteRT ms per face on 1 thread."""
    import statistics
    import time

    import numpy as np

    from converter.convert import convert
    from edge.litert import interpreter_class
    from trainer.model import build_encoder

    faces = np.random.default_rng(0).integers(0, 256, (32, input_size, input_size, 3), np.uint8)
    tflite = convert(build_encoder(input_size, width=width), "int8", faces, per_channel=False)
    interp = interpreter_class()(model_content=tflite, num_threads=1)
    interp.allocate_tensors()
    index = interp.get_input_details()[0]["index"]
    interp.set_tensor(index, (faces[:1].astype(np.int16) - 128).astype(np.int8))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times[10:]) * 1000, 3)


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def save_summary(summary: dict, results: Path = RESULTS) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{slug(summary['label'])}.json"
    path.write_text(json.dumps(summary, indent=1) + "\n")
    return path


def load_summaries(results: Path = RESULTS) -> list[dict]:
    """Every stored summary: short budgets first, then without a teacher before with one."""
    found = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    return sorted(found, key=lambda r: (r["train_minutes"], r["teacher"] != "none", r["label"]))


def setup(r: dict) -> str:
    text = r["loss"] + (f" + {r['teacher']} teacher" if r["teacher"] != "none" else "")
    if r.get("teacher_margin_max"):
        text += f" + teacher margins to {r['teacher_margin_max']:g}"
    return text + (f" + {r['head']} head" if r["head"] != "none" else "")


def crop(r: dict) -> str:
    """Input side and width multiplier (summaries older than these fields were 64 px, x1)."""
    return f"{r.get('input_size', 64)} px x{r.get('width', 1.0):g}"


def table_rows(summaries: list[dict]) -> list[list[object]]:
    rows = []
    for r in summaries:
        d = r["devtest"]
        rows.append(
            [
                r["label"],
                setup(r),
                crop(r),
                r["params"],
                r.get("int8_ms_per_face", "-"),
                r["train_minutes"],
                r["steps"],
                r["images_per_s"],
                r["threads"],
                f"{d['kfold_accuracy']:.3f} ± {d['kfold_std']:.3f}"
                if d.get("kfold_std") is not None
                else f"{d['kfold_accuracy']:.3f}",
                round(d["accuracy_at_threshold"], 3),
                round(d["threshold"], 3),
                round(d["auc"], 4),
                round(d["eer"], 3),
                round(d["tar_at_far_1e-2"], 3),
                d["one_shot_100way"]
                if d["one_shot_100way"] is None
                else round(d["one_shot_100way"], 3),
                r["teacher_targets"] or "-",
                r["recorded"],
            ]
        )
    return rows


def curve_styles(summaries: list[dict]) -> list[tuple[str, str]]:
    """(colour, line style) per summary: one colour per setup (loss, teacher, head), one line
    style per budget (dotted, dashed, dash-dot for the shorter ones; the longest solid), so
    equal-budget rows share a style and one loss keeps one colour."""

    def key(r: dict) -> str:  # a continued run is its own setup: it does not start from zero
        return setup(r) + crop(r) + (" from " + r["init_from"] if r.get("init_from") else "")

    setups = list(dict.fromkeys(key(r) for r in summaries))
    budgets = sorted({round(r["train_minutes"]) for r in summaries})
    short = [":", "--", "-."]
    style = {b: short[i % len(short)] for i, b in enumerate(budgets[:-1])}
    style[budgets[-1]] = "-"
    return [
        (
            to_hex(plt.cm.tab20(setups.index(key(r)) % 20)),
            style[round(r["train_minutes"])],
        )
        for r in summaries
    ]


#: the right panel's x range: the equal-budget rows end near here on this machine
STEP_ZOOM = 1000


def plot_curves(summaries: list[dict], path: Path = CURVE) -> None:
    """Accuracy against training minutes (all of every run) and against steps (the first
    ``STEP_ZOOM``), the second because the machine's speed differs between days."""
    fig, (ax_min, ax_step) = plt.subplots(1, 2, figsize=(13, 5.2), sharey=True)
    for r, (colour, ls) in zip(summaries, curve_styles(summaries), strict=True):
        start = r.get("start_minutes", 0.0)  # a run continued from a trained model
        points = [
            (start + h["minutes"], h["step"], h["pairs_acc"])
            for h in r["history"]
            if h.get("pairs_acc")
        ]
        if not points:
            continue
        minutes, steps, accs = zip(*points, strict=True)
        label = f"{r['label']}: {r['devtest']['kfold_accuracy']:.3f}"
        ax_min.plot(minutes, accs, ls=ls, color=colour, marker=".", ms=4, label=label)
        if not start:  # a continued run's steps do not start from scratch
            ax_step.plot(steps, accs, ls=ls, color=colour, marker=".", ms=4)  # clipped by xlim
    for ax in (ax_min, ax_step):
        for name, value in TARGETS.items():
            ax.axhline(value, ls="--", lw=0.8, color="grey")
            ax.text(
                0.01,
                value + 0.003,
                f"target, {name}",
                fontsize=8,
                color="grey",
                transform=ax.get_yaxis_transform(),
            )
        ax.grid(alpha=0.3)
    ax_min.set_ylim(top=max(ax_min.get_ylim()[1], max(TARGETS.values()) + 0.012))
    ax_min.set_xlabel("training minutes (2-core CPU, graph tracing and monitoring included)")
    ax_min.set_ylabel("pairsDevTest 10-fold accuracy (inference mode)")
    ax_min.legend(fontsize=8, loc="lower right")
    ax_step.set_xlabel(f"training steps (the first {STEP_ZOOM:,})")
    ax_step.set_xlim(0, STEP_ZOOM * 1.05)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


HEADERS = [
    "run",
    "loss",
    "crop, width",
    "params",
    "int8 ms/face",
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
    "recorded",
]


def report(summaries: list[dict], doc: Path = DOC, curve: Path = CURVE) -> str:
    """Write the trainer section of ``doc`` and the curve PNG beside it; return the table."""
    plot_curves(summaries, curve)
    table = markdown_table(HEADERS, table_rows(summaries))
    notes = "\n".join(f"- {r['label']}: {r['note']}" for r in summaries if r.get("note"))
    dates: dict[str, set[str]] = {}
    for r in summaries:
        dates.setdefault(r.get("machine", "unknown"), set()).add(r["recorded"])
    where = "; ".join(f"{m} ({', '.join(sorted(d))})" for m, d in dates.items())
    body = f"""Script: `benchmarks/bench_trainer.py` (see its docstring); every row is stored in
`benchmarks/results/trainer/` and the table and curve are rebuilt from those files. The machine
line above is where this report was last rebuilt; the rows were trained on: {where}.
Data: LFW (deep-funneled) minus every person in pairsDevTest.txt, plus the CelebA subset; 5% of
identities held out for validation; YuNet-aligned crops (64x64 unless "crop" says otherwise;
"x" is the channel width multiplier); P x K = 32 x 4 + 8 one-image
people per batch; AdamW, warmup + cosine LR over the time budget. "train min" is the wall-clock
training budget on this 2-core CPU (graph tracing and per-epoch monitoring included; the one-time,
cached passes before it are not: face detection and alignment of both roots, under 2 min, and
for the teacher row dlib's embeddings of every training face, 13 min on both cores); rows with
the same budget and date were trained one after another in one run of this script, and are the
equal-budget comparison. Across dates compare steps, not minutes: this machine's speed varies
from day to day (see "train images/s"). "DevTest 10-fold acc": LFW View 1 test pairs
(never trained on), threshold chosen on the other 9 folds, mean ± std over the folds;
"@ DevTrain threshold": one threshold fit on pairsDevTrain.txt; "one-shot 100-way": one photo of
each of 100 pairsDevTest people enrolled, another photo of one of them identified (1,000 trials,
chance 0.01). "int8 ms/face": the architecture's cost at the edge, measured when the row was
recorded (an untrained encoder of that shape as full-integer int8, LiteRT, 1 thread, median;
rows recorded before 2026-12-05 did not measure it). Targets (issue 3): 0.80 without a teacher, 0.92 with the dlib teacher.

{table}

{notes}

![accuracy vs training time]({curve.name})
"""
    write_section("trainer", "Trainer: losses, accuracy vs training time", body, doc)
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=6.0, help="training budget per loss variant")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--variants", default="semihard,contrastive,koch", help="losses to train ('' for none)"
    )
    ap.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="LABEL=OPTIONS",
        help="also train semihard with these trainer options for --minutes, e.g. "
        "'96 px=--input-size 96 --teacher dlib'; repeatable",
    )
    ap.add_argument("--out", default=str(REPO / "runs" / "bench"))
    ap.add_argument(
        "--add-run",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="evaluate a finished run folder and store its summary under LABEL; repeatable",
    )
    ap.add_argument(
        "--start-minutes",
        type=float,
        default=0.0,
        help="with --add-run: training minutes the run's --init-from model already had (its "
        "curve is drawn from there)",
    )
    ap.add_argument("--note", default="", help="with --add-run: a note printed under the table")
    ap.add_argument("--report-only", action="store_true", help="only re-write the doc and curve")
    args = ap.parse_args(argv)

    todo: list[tuple[str, Path]] = []
    added: set[str] = set()  # labels of --add-run runs (--start-minutes and --note apply to them)
    if not args.report_only:
        for loss in filter(None, args.variants.split(",")):
            out = Path(args.out) / f"{loss}-{args.minutes:g}min"
            train_variant(loss, args.minutes, args.threads, out)
            todo.append((f"{loss}, {args.minutes:g} min", out))
        for item in args.recipe:
            name, _, options = item.partition("=")
            if not name or not options:
                ap.error(f"--recipe {item!r}: expected LABEL=OPTIONS")
            out = Path(args.out) / f"{slug(name)}-{args.minutes:g}min"
            train_variant("semihard", args.minutes, args.threads, out, options.split())
            todo.append((f"{name}, {args.minutes:g} min", out))
        for item in args.add_run:
            label, _, path = item.partition("=")
            if not label or not (Path(path) / "training.json").is_file():
                ap.error(f"--add-run {item!r}: expected LABEL=DIR with DIR/training.json")
            todo.append((label, Path(path)))
            added.add(label)
    for label, run in todo:
        print(f"evaluating {label} ({run})", flush=True)
        summary = summarise(label, run, evaluate_run(run))
        summary["int8_ms_per_face"] = int8_ms_per_face(summary["input_size"], summary["width"])
        if label in added and args.start_minutes:
            summary["start_minutes"] = args.start_minutes
        if label in added and args.note:
            summary["note"] = args.note
        print("wrote", save_summary(summary))
    print(report(load_summaries()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
