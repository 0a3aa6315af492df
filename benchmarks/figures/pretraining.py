"""Pretraining loss curves: one panel per registered objective (celllm.pretrain.objectives), from a checkpoint's train_log.csv."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from benchmarks.figures import style
from celllm.errors import InputError
from celllm.pretrain.objectives import objectives


def panels() -> dict[str, str]:
    """Column of the training log -> panel title, one per registered objective, in the registry's order."""
    return {o.name: o.title for o in objectives()}


def plot_loss_curves(train_log, png_path, smoothing: int = 10) -> None:
    """Raw per-step losses (faint) and their rolling mean over `smoothing` steps."""
    log = pd.read_csv(train_log)
    series = panels()
    missing = [c for c in ["step", *series] if c not in log.columns]
    if missing or log.empty:
        raise InputError(f"{train_log}: not a pretraining log (missing {', '.join(missing) or 'rows'})")
    style.setup()
    figure, axes = plt.subplots(1, len(series), figsize=(11 * len(series) / 3, 3.2), sharex=True, squeeze=False)
    axes = axes[0]
    for ax, (column, title) in zip(axes, series.items()):
        ax.plot(log["step"], log[column], color="0.75", linewidth=0.8, label="per step")
        ax.plot(log["step"], log[column].rolling(smoothing, min_periods=1).mean(), linewidth=2, label=f"mean of {smoothing}")
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
    axes[0].set_ylabel("loss")
    axes[0].legend(frameon=False)
    figure.suptitle("CellLM pretraining losses", y=1.03)
    style.save(figure, png_path)
