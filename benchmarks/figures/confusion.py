"""Confusion matrix of one (dataset, model), summed over the seeds' run records."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from benchmarks.figures import read_json_object, style
from benchmarks.figures.style import TICK_SIZE, as_bool, dataset_label, wrap_label
from celllm.errors import InputError


def _confusion(path, record: dict) -> tuple[list[str], np.ndarray]:
    confusion = record.get("confusion")
    try:
        labels = [str(label) for label in confusion["labels"]]
        matrix = np.asarray(confusion["matrix"], dtype=float)
    except (TypeError, KeyError, ValueError):
        raise InputError(f"{path}: no confusion matrix ('confusion' with 'labels' and 'matrix') in the run record") from None
    if matrix.shape != (len(labels), len(labels)) or not len(labels):
        raise InputError(f"{path}: confusion matrix of shape {matrix.shape} does not match its {len(labels)} labels")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise InputError(f"{path}: confusion matrix has negative or non-finite counts")
    return labels, matrix


def plot_confusion(metrics_json_paths, png):
    """Confusion matrix of one (dataset, model) summed over its seeds' run records, each row normalised to 100%."""
    paths = [Path(p) for p in ([metrics_json_paths] if isinstance(metrics_json_paths, (str, Path)) else metrics_json_paths)]
    if not paths:
        raise InputError("no run records (metrics.json) given for the confusion matrix")
    records, first = [], None
    for path in paths:
        record = read_json_object(path)
        labels, matrix = _confusion(path, record)
        key = (record.get("task"), record.get("setting"), record.get("dataset"), record.get("model"))
        if first is None:
            first = (path, key)
        elif key != first[1]:
            raise InputError(
                f"{path}: run record of {key[3]} on {key[2]} ({key[1]}), but {first[0]} is {first[1][3]} on {first[1][2]} ({first[1][1]}); "
                "give the records of one dataset and model"
            )
        records.append((record, labels, matrix))
    order = list(dict.fromkeys(label for _, labels, _ in records for label in labels))
    index = {label: i for i, label in enumerate(order)}
    total = np.zeros((len(order), len(order)))
    for _, labels, matrix in records:
        idx = [index[label] for label in labels]
        total[np.ix_(idx, idx)] += matrix
    record0 = records[0][0]
    seeds = sorted({r.get("seed") for r, _, _ in records if r.get("seed") is not None})
    n_runs = len(seeds) or len(records)
    row_sums = total.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(row_sums > 0, total / row_sums, np.nan)
    accuracy = np.trace(total) / total.sum() if total.sum() else float("nan")

    style.setup()
    n = len(order)
    cell = 0.42 if n <= 8 else 0.36 if n <= 12 else max(0.22, 4.5 / n)  # inches per matrix cell: 7 in wide at most for ~12 types
    counts = total.sum(axis=1).astype(int)
    y_labels = [f"{wrap_label(label, 18)} (n={c})" for label, c in zip(order, counts)]
    y_label_in = 0.06 * max(len(line) for label in y_labels for line in label.split("\n")) + 0.45  # tick labels + axis label
    x_label_in = 0.04 * max(len(label) for label in order) + 0.45  # rotated 45 degrees
    figure, ax = plt.subplots(figsize=(n * cell + y_label_in + 1.3, n * cell + x_label_in + 0.7), layout="constrained")
    annotate = n <= 15
    text = np.full(total.shape, "", dtype=object)
    if annotate:
        for i in range(n):
            for j in range(n):
                if total[i, j] > 0:
                    value = 100 * fraction[i, j]
                    text[i, j] = "<1" if value < 0.5 else f"{value:.0f}"
    sns.heatmap(
        fraction * 100,
        ax=ax,
        cmap="Blues",
        vmin=0,
        vmax=100,
        square=True,
        annot=text if annotate else False,
        fmt="",
        annot_kws={"fontsize": 7.5 if n <= 12 else 7},
        linewidths=0.4,
        linecolor="white",
        cbar_kws={"label": "% of the true type's test cells", "shrink": 0.8},
    )
    ax.set_xticks(np.arange(n) + 0.5)
    ax.set_yticks(np.arange(n) + 0.5)
    ax.set_xticklabels(order, rotation=45, ha="right", rotation_mode="anchor", fontsize=TICK_SIZE)
    ax.set_yticklabels(y_labels, rotation=0, fontsize=TICK_SIZE)
    ax.set_xlabel("predicted cell type")
    ax.set_ylabel(f"true cell type (test cells, {n_runs} seeds pooled)")
    simulated = as_bool(record0.get("simulated", False))
    figure.suptitle(
        f"{record0.get('model')} on {dataset_label(record0.get('dataset'), simulated)}\n"
        f"confusion matrix, {n_runs} seed{'s' if n_runs != 1 else ''} summed, rows normalised; pooled accuracy {accuracy:.2f}",
        fontsize=plt.rcParams["axes.titlesize"],
    )
    style.save(figure, png)
    return figure
