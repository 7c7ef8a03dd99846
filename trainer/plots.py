"""PNG plots: training curve, ROC, same/different score histogram (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from trainer.evaluate import roc_curve


def plot_training(history: list[dict], path: str | Path) -> None:
    """Loss and active-triplet fraction, and inference-mode accuracy, against training minutes."""
    if not history:
        return
    minutes = [h["minutes"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(minutes, [h["loss"] for h in history], label="total loss")
    ax1.plot(minutes, [h["metric_loss"] for h in history], label="metric loss")
    if any(h.get("distill_loss") for h in history):
        ax1.plot(minutes, [h["distill_loss"] for h in history], label="distillation")
    ax1.plot(minutes, [h["active_triplets"] for h in history], "--", label="active triplets")
    ax1.set_xlabel("training minutes")
    ax1.legend()
    ax1.grid(alpha=0.3)
    for key, label in (
        ("val_acc", "validation 10-fold acc"),
        ("pairs_acc", "monitor pairs 10-fold acc"),
    ):
        if any(key in h for h in history):
            ax2.plot(minutes, [h.get(key, np.nan) for h in history], marker=".", label=label)
    ax2.set_xlabel("training minutes")
    ax2.set_ylabel("accuracy (inference mode)")
    if ax2.get_lines():  # runs without validation or monitor pairs have nothing to label
        ax2.legend()
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc_hist(
    scores: np.ndarray, same: np.ndarray, out_dir: str | Path, threshold: float | None = None
) -> None:
    """Write ``roc.png`` (log-FAR ROC) and ``scores.png`` (same vs different cosine histogram)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores, same = np.asarray(scores), np.asarray(same, bool)
    far, tar, _ = roc_curve(scores, same)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(np.maximum(far, 1e-4), tar)
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title("ROC")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "roc.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(-1, 1, 81)
    ax.hist(scores[same], bins, alpha=0.6, label="same person")
    ax.hist(scores[~same], bins, alpha=0.6, label="different people")
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("cosine similarity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "scores.png", dpi=100)
    plt.close(fig)
