"""The recipe study's figure (results/recipe/recipes.csv, benchmarks.recipe): which pretraining choices help.

Left: every recipe's validation score (held-out simulated cells), one bar per variant,
grouped and coloured by the factor it changes, with the untrained encoder ([CLS] and mean
of the gene states) and PCA as vertical lines and the base recipe's seed-to-seed spread as a grey band. Middle: the
same recipes on the real pbmc68k_reduced (kNN F1), never used to choose. Right: the
learning curves of the starting and the chosen recipe (validation score and mean cosine
against steps; benchmarks.recipe.LEARNING_CURVES).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from benchmarks.figures import read_csv_file, style
from benchmarks.figures.style import NOTE_SIZE, TICK_SIZE
from benchmarks.recipe import CHOICE_METRIC, FACTOR_ORDER, LEARNING_CURVES, PCA, seed_noise
from celllm.errors import InputError

_PALETTE = plt.get_cmap("tab10")


def plot_recipes(table, png):
    """Draw results/figures/recipe.png (and .pdf) from the study's table (a path)."""
    style.setup()
    frame = read_csv_file(table, "recipe table")
    missing = [c for c in ("variant", "factor", CHOICE_METRIC, "pbmc_knn_f1", "mean_cosine") if c not in frame]
    if missing:
        raise InputError(f"{table}: no column {', '.join(missing)} (a table written by the recipe rule)")
    order = {factor: i for i, factor in enumerate(FACTOR_ORDER)}
    frame = frame.assign(_group=frame["factor"].map(order).fillna(len(order)))
    frame = frame.sort_values(["_group", CHOICE_METRIC], ascending=[False, True], kind="stable")
    bars = frame[frame["variant"] != PCA]
    colours = {factor: _PALETTE(i % 10) for i, factor in enumerate(FACTOR_ORDER)}
    y = np.arange(len(bars))

    figure, axes = plt.subplots(1, 3, figsize=(13, 0.24 * len(bars) + 1.8), gridspec_kw={"width_ratios": [2.2, 1.4, 1.6]})
    for ax, metric, title in (
        (axes[0], CHOICE_METRIC, "held-out simulated cells\n(mean of kNN F1 and ARI)"),
        (axes[1], "pbmc68k_reduced", None),
    ):
        column = CHOICE_METRIC if metric == CHOICE_METRIC else "pbmc_knn_f1"
        ax.barh(y, bars[column], color=[colours.get(f, "grey") for f in bars["factor"]], height=0.75)
        for name, style_ in (("untrained", ":"), ("untrained_mean", "-."), (PCA, "--")):
            value = frame.loc[frame["variant"] == name, column]
            if len(value):
                ax.axvline(float(value.iloc[0]), color="black", linestyle=style_, linewidth=1, label=name)
        ax.set_title(title or "pbmc68k_reduced kNN F1\n(real cells, not used to choose)", fontsize=TICK_SIZE + 1)
        ax.set_xlim(0, 1)
    base = frame.loc[frame["variant"] == "base", CHOICE_METRIC]
    noise = seed_noise(frame)
    if len(base) and np.isfinite(noise):
        axes[0].axvspan(float(base.iloc[0]) - noise, float(base.iloc[0]) + noise, color="0.85", zorder=0, label="base ± seed sd")
    axes[0].set_yticks(y, bars["variant"], fontsize=TICK_SIZE)
    axes[1].set_yticks(y, [""] * len(y))
    axes[0].legend(fontsize=NOTE_SIZE, loc="lower right")
    for factor in dict.fromkeys(bars["factor"]):
        rows = np.flatnonzero(bars["factor"].to_numpy() == factor)
        axes[1].text(
            1.01, rows.mean(), factor, transform=axes[1].get_yaxis_transform(), fontsize=NOTE_SIZE, va="center", color=colours.get(factor)
        )

    ax = axes[2]
    scores = frame.set_index("variant")
    for (recipe, curve), colour in zip(LEARNING_CURVES.items(), (colours["base"], colours["combined"])):
        present = {steps: name for steps, name in curve.items() if name in scores.index}
        steps = list(present)
        ax.plot(steps, scores.loc[list(present.values()), CHOICE_METRIC], marker="o", color=colour, label=f"{recipe}: validation")
        ax.plot(
            steps,
            scores.loc[list(present.values()), "mean_cosine"],
            marker="s",
            color=colour,
            linestyle="--",
            label=f"{recipe}: mean cosine",
        )
    pca = frame.loc[frame["variant"] == PCA, CHOICE_METRIC]
    if len(pca):
        ax.axhline(float(pca.iloc[0]), color="black", linestyle="--", linewidth=1, label="PCA validation score")
    ax.set_xlabel("pretraining steps")
    ax.set_ylim(0, 1)
    ax.set_title("learning curve", fontsize=TICK_SIZE + 1)
    ax.legend(fontsize=NOTE_SIZE)
    figure.tight_layout()
    style.save(figure, png)
    plt.close(figure)
    return figure
