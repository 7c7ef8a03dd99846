"""Dark and noisy faces: what exposure normalisation and its smoothing gates do, on people
never trained on.

    .venv/bin/python benchmarks/bench_light.py [--no-write]

Faces: the shipped model's held-out identities (the trainer's seed-0 split, used to choose
the settings) and the people of ``pairsDevTest.txt`` (up to 10 photos each, the check). Each
person with 2+ photos is enrolled from their first photo as it is (the edge's preprocessing);
every other photo of theirs is a probe, shown as the door shows it
(:func:`trainer.augment.door_probe`): ``normal``, ``dark`` (under-exposed to 20-35% with
sensor noise and the camera's gain), ``door dark`` (the door benchmark's dark scene at the
crop: shrunk to 80-160 px, darkened as :func:`benchmarks.door_clips.darkened` darkens a frame,
JPEG quality 90 as its frames are stored, enlarged back), or all four door conditions a
quarter each (``door mix``). Every probe
is scored against every enrolled person on the model's scale (flip fusion, cohort): true
accepts at the manifest's threshold, false accepts there (probe against another person), and
true accepts where 1 in 1000 such pairs is accepted (equal false accepts).

Variants (what happens to a crop before the encoder): nothing; brightened only
(:func:`edge.exposure.normalise_exposure` with both gates off); brightened, then smoothed when
the estimated noise exceeds ``noise_above`` and/or the gain exceeds ``gain_above`` (shipped:
both, :data:`edge.exposure.NOISE_ABOVE`, :data:`~edge.exposure.SMOOTH_ABOVE_GAIN`,
:data:`~edge.exposure.DENOISE_SIGMA`); and every crop smoothed (no gate). Enrolment photos go
through the same variant as the probes, as on the edge.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import markdown_table, write_section
from benchmarks.bench_test_time import load_data, rates_at
from benchmarks.door_clips import JPEG_QUALITY, darkened
from edge.embedder import RECOGNITION_FLIP, Embedder
from edge.exposure import (
    DENOISE_SIGMA,
    NOISE_ABOVE,
    SMOOTH_ABOVE_GAIN,
    exposure_gain,
    noise_level,
    normalise_exposure,
)
from edge.pipeline import resolve_model
from trainer.augment import door_probe, door_probes

SHIPPED = f"noise > {NOISE_ABOVE:g} or gain > {SMOOTH_ABOVE_GAIN:g}: smoothed (sigma {DENOISE_SIGMA:g}, shipped)"
OFF = np.inf
#: name -> normalise_exposure's keyword arguments; None = no exposure normalisation at all
VARIANTS: dict[str, dict[str, float] | None] = {
    "as captured": None,
    "brightened only": {"noise_above": OFF, "gain_above": OFF},
    f"noise > {NOISE_ABOVE:g}: smoothed (sigma 1.0)": {"gain_above": OFF, "sigma": 1.0},
    f"noise > {NOISE_ABOVE:g}: smoothed (sigma 1.4)": {"gain_above": OFF, "sigma": 1.4},
    f"gain > {SMOOTH_ABOVE_GAIN:g}: smoothed (sigma 1.4)": {"noise_above": OFF, "sigma": 1.4},
    SHIPPED: {"sigma": DENOISE_SIGMA},
    "gain > 1.5: smoothed (sigma 1.4)": {"noise_above": OFF, "gain_above": 1.5, "sigma": 1.4},
    "every crop smoothed (sigma 1.4)": {"noise_above": 0.0, "sigma": 1.4},
}
CONDITIONS = ("normal", "dark", "door dark", "door mix")


def progress(what: str) -> None:
    print(f"bench_light: {what}", file=sys.stderr, flush=True)


def enrol_and_probe(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(enrolment indices: each person's first photo, probe indices: their other photos),
    over the people with 2+ photos."""
    firsts: dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        firsts.setdefault(label, i)
    counts = dict(zip(*np.unique(labels, return_counts=True), strict=True))
    enrol = np.array([i for label, i in firsts.items() if counts[label] >= 2])
    taken = set(enrol.tolist())
    probes = np.array([i for i, lb in enumerate(labels) if i not in taken and counts[lb] >= 2])
    return enrol, probes


def door_dark(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An aligned crop as the door benchmark's dark visits reach the encoder: the face at
    80-160 px in a dark, noisy frame stored as JPEG, enlarged back to the crop."""
    side = crop.shape[0]
    small = cv2.resize(crop, (int(rng.integers(80, 161)),) * 2, interpolation=cv2.INTER_AREA)
    dark = darkened(small, rng.uniform(0.2, 0.35), rng.uniform(1.0, 1.2), rng.uniform(3, 6), rng)
    _ok, jpg = cv2.imencode(".jpg", dark[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    stored = cv2.imdecode(jpg, cv2.IMREAD_COLOR)[..., ::-1]  # RGB crops, BGR files
    return cv2.resize(stored, (side, side), interpolation=cv2.INTER_LINEAR)


def probes_in(condition: str, crops: np.ndarray, seed: int = 0) -> np.ndarray:
    if condition == "door mix":
        return door_probes(crops, seed)[0]
    rng = np.random.default_rng(seed)
    if condition == "door dark":
        return np.stack([door_dark(c, rng) for c in crops])
    return np.stack([door_probe(c, condition, rng) for c in crops])


def prepared(crops: np.ndarray, variant: dict[str, float] | None) -> np.ndarray:
    return crops if variant is None else normalise_exposure(crops, **variant)


def rates(embedder: Embedder, enrolled: np.ndarray, probes: np.ndarray, same: np.ndarray) -> dict:
    """True and false accepts of ``probes`` against the ``enrolled`` embeddings at the model's
    threshold, and true accepts where 1 in 1000 false pairs is accepted."""
    scores = embedder.scoring.pairwise(embedder.embed(probes), enrolled)
    tar, far = rates_at(scores, same, embedder.scoring.threshold)
    at_far = np.quantile(scores[~same], 1 - 1e-3)
    return {"tar": tar, "far": far, "tar_at_far_1e-3": float(np.mean(scores[same] >= at_far))}


def gates(crops: np.ndarray) -> tuple[float, float]:
    """Shares of ``crops`` over the noise bar (once brightened) and over the gain bar."""
    brightened = normalise_exposure(crops, noise_above=OFF, gain_above=OFF)
    noisy = float(np.mean([noise_level(c) > NOISE_ABOVE for c in brightened]))
    gained = float(np.mean([exposure_gain(c) > SMOOTH_ABOVE_GAIN for c in crops]))
    return noisy, gained


def measure(embedder: Embedder, crops: np.ndarray, labels: np.ndarray) -> list[dict]:
    enrol, probe = enrol_and_probe(labels)
    same = labels[probe][:, None] == labels[enrol][None, :]
    # the enrolment photos are clean: embedded once per variant, not once per condition too
    enrolled = {name: embedder.embed(prepared(crops[enrol], v)) for name, v in VARIANTS.items()}
    rows = []
    for condition in CONDITIONS:
        shown = probes_in(condition, crops[probe])
        noisy, gained = gates(shown)
        for name, variant in VARIANTS.items():
            r = rates(embedder, enrolled[name], prepared(shown, variant), same)
            rows.append(
                {"condition": condition, "variant": name, "noisy": noisy, "gained": gained, **r}
            )
    return rows


def table(rows: list[dict]) -> str:
    return markdown_table(
        ["probes", "before the encoder", "TAR at threshold", "FAR at threshold", "TAR at FAR 1e-3"],
        [
            [
                r["condition"],
                r["variant"],
                f"{r['tar']:.3f}",
                f"{r['far']:.4f}",
                f"{r['tar_at_far_1e-3']:.3f}",
            ]
            for r in rows
        ],
    )


def verdict(held: list[dict], test: list[dict]) -> str:
    """The shipped gate against brightening alone and against smoothing every crop."""

    def row(rows: list[dict], condition: str, variant: str) -> dict:
        return next(r for r in rows if r["condition"] == condition and r["variant"] == variant)

    def change(rows: list[dict], condition: str, before: str, key: str) -> str:
        a, b = row(rows, condition, before)[key], row(rows, condition, SHIPPED)[key]
        return f"{a:.3f} -> {b:.3f}" if key != "far" else f"{a:.4f} -> {b:.4f}"

    everything = "every crop smoothed (sigma 1.4)"
    alone = "brightened only"
    return (
        "Smoothing (shipped gates) against brightening alone, TAR at the threshold (FAR there): "
        f"the door's dark scene {change(held, 'door dark', alone, 'tar')} "
        f"({change(held, 'door dark', alone, 'far')}) on the held-out identities, "
        f"{change(test, 'door dark', alone, 'tar')} ({change(test, 'door dark', alone, 'far')}) "
        f"on the test people; camera-gained dark {change(held, 'dark', alone, 'tar')} "
        f"({change(held, 'dark', alone, 'far')}) and {change(test, 'dark', alone, 'tar')} "
        f"({change(test, 'dark', alone, 'far')}); normal probes "
        f"{change(test, 'normal', alone, 'tar')}. Smoothing every crop instead: door-mix TAR at "
        f"FAR 1e-3 on the held-out identities {row(held, 'door mix', everything)['tar_at_far_1e-3']:.3f} "
        f"against the gates' {row(held, 'door mix', SHIPPED)['tar_at_far_1e-3']:.3f}, FAR at the "
        f"threshold {row(held, 'door mix', everything)['far']:.4f} against "
        f"{row(held, 'door mix', SHIPPED)['far']:.4f}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    model = resolve_model(args.model)
    embedder = Embedder(model, threads=1, flip=RECOGNITION_FLIP, exposure=False)
    data = load_data(embedder.input_size, embedder.preprocessing)
    results = {}
    for key, faces in (("held_out", data["held_out"]), ("test_people", data["test_people"])):
        progress(f"scoring {len(faces.labels)} {key} faces")
        results[key] = measure(embedder, faces.crops, faces.labels)
    held, test = results["held_out"], results["test_people"]
    shares = "; ".join(
        f"{r['condition']} {r['noisy']:.0%} / {r['gained']:.0%}"
        for r in test
        if r["variant"] == SHIPPED
    )
    body = "\n\n".join(
        [
            __doc__.split("\n\n", 2)[2].strip(),
            f"Model `{model.name}`, threshold {embedder.scoring.threshold:.4f} on its scale, "
            f"flip fusion {RECOGNITION_FLIP}. Test people's probes over the noise bar once "
            f"brightened / over the gain bar: {shares}.",
            "Held-out identities (settings chosen here):",
            table(held),
            "People of pairsDevTest (never used to choose):",
            table(test),
            verdict(held, test),
        ]
    )
    print(body)
    if not args.no_write:
        write_section("light", "Dark and noisy faces", body)


if __name__ == "__main__":
    main()
