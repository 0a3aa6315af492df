"""Bar figures of a task's table (results/tables/{task}.csv), one per task, drawn as the task says.

Every measured model's mean over seeds with the sample sd as error bar, one
horizontal bar per model so that long model names stay readable; models are
coloured by kind (benchmarks.figures.colours). Rows of kind "reference"
(published numbers, benchmarks/references.tsv) are never drawn as bars: they
appear below the measured models as black diamonds labelled "published". A
metric a model leaves undefined (NaN, e.g. the Pearson of a control's constant
predictions) is marked "n/a". Metric labels, ranges and chance levels come from
benchmarks.metrics; setting labels from the task's settings.

`plot_task` takes the table, the output PNG path and the task's name, writes the
PNG and the PDF beside it (`style.save`), returns the (closed) figure, and raises
`InputError` naming the file for a missing or malformed input.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from benchmarks.aggregate import KEYS, KIND_ORDER
from benchmarks.figures import read_csv_file, style
from benchmarks.figures.colours import KIND_LABELS, KIND_SWATCH, model_colours
from benchmarks.figures.style import NOTE_SIZE, TICK_SIZE, as_bool, dataset_label, wrap_label
from benchmarks.metrics import metric as metric_of
from benchmarks.tasks import get_task, setting_label
from celllm.errors import InputError

SETTING_STYLES = [  # (hatch, alpha) per side-by-side setting
    ("", 1.0),
    ("////", 0.55),
    ("...", 0.4),
    ("xx", 0.4),
]


def read_table(table_csv, task: str, metrics: list[str]) -> pd.DataFrame:
    """A results table (benchmarks/aggregate.py layout) restricted to `task`; checks the columns the figure needs.

    `rank` and `beats_control` are not needed (older tables lack them); a missing
    `<metric>_std` counts as no spread.
    """
    path = Path(table_csv)
    table = read_csv_file(path, "table")
    missing = [c for c in [*KEYS, *(f"{m}_mean" for m in metrics)] if c not in table.columns]
    if missing:
        raise InputError(f"{path}: not a {task} results table (missing columns: {', '.join(missing)})")
    table = table[table["task"] == task].copy()
    if table.empty:
        raise InputError(f"{path}: no rows for task '{task}'")
    for metric in metrics:
        for stat in ("mean", "std"):
            column = f"{metric}_{stat}"
            if column not in table.columns:
                table[column] = np.nan
            table[column] = pd.to_numeric(table[column], errors="coerce")
    table["simulated"] = table["simulated"].map(as_bool)
    table["model"] = table["model"].astype(str)
    table["kind"] = table["kind"].astype(str)
    return table


def _order(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Measured models (CellLM, baselines, controls; table order within a kind) and reference models."""
    measured = table[table["kind"] != "reference"]
    seen = list(dict.fromkeys(measured["model"]))
    kinds = dict(zip(measured["model"], measured["kind"]))
    models = sorted(seen, key=lambda m: (KIND_ORDER.get(kinds[m], len(KIND_ORDER)), seen.index(m)))
    references = list(dict.fromkeys(table.loc[table["kind"] == "reference", "model"]))
    return models, references


def _seed_note(table: pd.DataFrame) -> str:
    if "n_seeds" not in table.columns:
        return "mean ± sd over seeds"
    seeds = pd.to_numeric(table.loc[table["kind"] != "reference", "n_seeds"], errors="coerce").dropna().astype(int).unique()
    if len(seeds) == 1:
        return "one seed" if seeds[0] == 1 else f"mean ± sd over {seeds[0]} seeds"
    if len(seeds) > 1:
        return f"mean ± sd over {seeds.min()}–{seeds.max()} seeds"
    return "mean ± sd over seeds"


def _bar_panel(
    ax,
    part: pd.DataFrame,
    metric: str,
    models: list[str],
    references: list[str],
    colours: dict,
    groups: list[str] | None,
    group_column: str = "setting",
) -> None:
    """Horizontal bars (mean, sd) of `metric` per model; published values as diamonds below."""
    groups = groups or [None]
    k = len(groups)
    height = 0.8 / k
    y_ref0 = len(models) + 0.6
    for g, group in enumerate(groups):
        sub = part if group is None else part[part[group_column] == group]
        hatch, alpha = SETTING_STYLES[g % len(SETTING_STYLES)]
        offset = (g - (k - 1) / 2) * height
        rows = {r["model"]: r for _, r in sub[sub["kind"] != "reference"].iterrows()}
        for i, model in enumerate(models):
            row = rows.get(model)
            if row is None:
                continue
            mean, sd = row[f"{metric}_mean"], row[f"{metric}_std"]
            y = i + offset
            if pd.isna(mean):
                ax.annotate(
                    "n/a (undefined)",
                    xy=(0, y),
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                    ha="left",
                    fontsize=NOTE_SIZE,
                    color="0.35",
                    style="italic",
                )
                continue
            ax.barh(
                y,
                mean,
                height=height * 0.92,
                color=colours[model],
                alpha=alpha,
                hatch=hatch,
                edgecolor="white" if not hatch else colours[model],
                linewidth=0.6,
            )
            if k > 1 and hatch:  # keep the hatch visible on light shades: draw the outline solid
                ax.barh(y, mean, height=height * 0.92, fill=False, edgecolor=colours[model], linewidth=0.8)
            if not pd.isna(sd) and sd > 0:
                ax.errorbar(mean, y, xerr=sd, fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        refs = {r["model"]: r for _, r in sub[sub["kind"] == "reference"].iterrows()}
        for j, model in enumerate(references):
            row = refs.get(model)
            if row is None or pd.isna(row[f"{metric}_mean"]):
                continue
            ax.plot(row[f"{metric}_mean"], y_ref0 + j + offset, marker="D", markersize=4.5, color="black", linestyle="none")
    described = metric_of(metric)
    chance = described.chance
    if chance is not None:
        ax.axvline(chance, color="0.4", linestyle=":", linewidth=0.9, zorder=0)
    if described.bounds == (0.0, 1.0):
        ax.set_xlim(0, 1.0)
    else:
        low, high = ax.get_xlim()
        ax.set_xlim(min(0.0, low), max(high, 0.0))
        if described.bounds == (-1.0, 1.0):  # a correlation
            ax.set_xlim(min(0.0, low), max(1.0, high) if high > 0.9 else high)
    if references:
        ax.axhline(len(models) - 0.1, color="0.6", linewidth=0.6, linestyle="-")
    ax.axvline(0, color="0.3", linewidth=0.6)
    ax.grid(axis="y", visible=False)


def _y_labels(ax, models: list[str], references: list[str]) -> None:
    positions = list(range(len(models))) + [len(models) + 0.6 + j for j in range(len(references))]
    labels = list(models) + [wrap_label(f"{r} [published]", 30) for r in references]
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=TICK_SIZE)
    for tick, i in zip(ax.get_yticklabels(), range(len(positions))):
        if i >= len(models):
            tick.set_fontstyle("italic")
    ax.set_ylim(positions[-1] + 0.6, -0.6)


def _legend_handles(kinds: list[str], groups: list[str] | None, has_references: bool, group_labels: dict | None = None):
    handles = [Patch(facecolor=KIND_SWATCH[k], edgecolor="none", label=KIND_LABELS[k]) for k in KIND_SWATCH if k in kinds]
    if groups and len(groups) > 1:
        for g, group in enumerate(groups):
            hatch, alpha = SETTING_STYLES[g % len(SETTING_STYLES)]
            handles.append(Patch(facecolor="0.55", alpha=alpha, hatch=hatch, edgecolor="0.3", label=(group_labels or {}).get(group, group)))
    if has_references:
        handles.append(Line2D([], [], marker="D", color="black", linestyle="none", markersize=4.5, label="published (not measured here)"))
    return handles


def _bar_figure(
    table: pd.DataFrame,
    rows: list[tuple[str, pd.DataFrame]],
    metrics: list[str],
    title: str,
    groups: list[str] | None = None,
    width: float = 7.0,
    group_labels: dict | None = None,
    looks: dict | None = None,
):
    """One row of panels per (label, sub-table), one panel per metric; models share the y axis within a row.

    A single grid (a thin header row above each row of panels) keeps the panels of
    every row aligned, whatever the width of each row's model names.
    """
    models_all, _ = _order(table)
    kinds_all = dict(zip(table["model"], table["kind"]))
    colours = model_colours([(m, kinds_all[m]) for m in models_all], looks)
    per_model = 0.17 + 0.1 * (len(groups) - 1 if groups else 0)
    header = 0.3
    heights, layouts = [], []
    for label, part in rows:
        models, references = _order(part)
        ref_lines = sum(wrap_label(f"{r} [published]", 30).count("\n") + 1 for r in references)
        heights += [header, 0.75 + per_model * (len(models) + len(references)) + 0.08 * ref_lines + (0.3 if references else 0)]
        layouts.append((label, part, models, references))
    figure = plt.figure(figsize=(width, sum(heights) + 0.5), layout="constrained")
    grid = figure.add_gridspec(len(heights), len(metrics), height_ratios=heights)
    columns = {metric: [] for metric in metrics}
    for r, (label, part, models, references) in enumerate(layouts):
        head = figure.add_subplot(grid[2 * r, :])
        head.axis("off")
        head.text(
            0.5, 0.0, label, transform=head.transAxes, ha="center", va="bottom", fontweight="bold", fontsize=plt.rcParams["axes.titlesize"]
        )
        first = None
        for c, metric in enumerate(metrics):
            ax = figure.add_subplot(grid[2 * r + 1, c], sharey=first)
            first = first or ax
            _bar_panel(ax, part, metric, models, references, colours, groups)
            ax.set_xlabel(wrap_label(metric_of(metric).label, 16))
            ax.tick_params(axis="x", labelsize=TICK_SIZE)
            if c:
                ax.tick_params(axis="y", labelleft=False)
            columns[metric].append(ax)
        _y_labels(first, models, references)
    for axes in columns.values():  # one scale per metric, so rows (datasets, splits) compare by eye
        limits = np.array([ax.get_xlim() for ax in axes])
        for ax in axes:
            ax.set_xlim(limits[:, 0].min(), limits[:, 1].max())
    kinds = [k for k in table.loc[table["kind"] != "reference", "kind"].unique()]
    handles = _legend_handles(kinds, groups, (table["kind"] == "reference").any(), group_labels)
    for name in metrics:
        chance = metric_of(name).chance
        if chance is not None:
            handles.append(Line2D([], [], color="0.4", linestyle=":", linewidth=0.9, label=f"chance ({metric_of(name).label} {chance:g})"))
    figure.suptitle(title, fontsize=plt.rcParams["axes.titlesize"] + 1)
    figure.legend(
        handles=handles,
        loc="outside lower center",
        ncol=len(handles) if len(handles) <= 5 else 3,
        frameon=False,
        fontsize=TICK_SIZE,
        handlelength=1.6,
        columnspacing=1.2,
    )
    return figure


def _provenance(table: pd.DataFrame) -> str:
    measured = table[table["kind"] != "reference"]
    simulated = measured["simulated"].unique()
    if len(simulated) == 1:
        return " (simulated)" if simulated[0] else " (real data)"
    return ""


def plot_task(table_csv, png, task: str, looks: dict | None = None, metrics: list[str] | None = None, title: str | None = None):
    """The task's figure metrics (or `metrics`) per model (mean ± sd over seeds): one row of panels per
    dataset and setting, or per dataset with the settings side by side, as the task (benchmarks/tasks/)
    says. `looks`: the registered models' kinds and colours (benchmarks.registry.looks)."""
    spec = get_task(task)
    metrics = list(metrics or spec.figure_metrics)
    table = read_table(table_csv, task, metrics)
    present = list(dict.fromkeys(table["setting"]))
    settings = [s for s in spec.settings if s in present] + [s for s in present if s not in spec.settings]
    labels = {s: setting_label(task, s) for s in settings}
    datasets = list(dict.fromkeys(table["dataset"]))

    def simulated(part):
        return bool(part.loc[part["kind"] != "reference", "simulated"].any())

    style.setup()
    rows = []
    for dataset in datasets:
        part = table[table["dataset"] == dataset]
        if spec.settings_side_by_side:
            rows.append((dataset_label(dataset, simulated(part)), part))
            continue
        for setting in settings:
            sub = part[part["setting"] == setting]
            if sub.empty:
                continue
            name = dataset_label(dataset, simulated(sub))
            if len(settings) > 1:
                name = labels[setting] if len(datasets) == 1 else f"{name}: {labels[setting]}"
            rows.append((name, sub))
    where = f" on {dataset_label(datasets[0], simulated(table))}" if len(datasets) == 1 and len(settings) > 1 else _provenance(table)
    figure = _bar_figure(
        table,
        rows,
        metrics,
        f"{title or spec.title}{where}: {_seed_note(table)}",
        groups=settings if spec.settings_side_by_side else None,
        group_labels=labels,
        width=max(7.0, 1.8 * len(metrics)),
        looks=looks,
    )  # a panel stays readable with many metrics
    style.save(figure, png)
    return figure


def plot_task_details(table_csv, png, task: str, looks: dict | None = None):
    """The metrics of the task's first detail table (for the embedding task: its geometry and what it
    encodes) per model, those the table holds, drawn as `plot_task` draws the headline ones."""
    spec = get_task(task)
    if not spec.detail_tables:
        raise InputError(f"task '{task}' declares no detail metrics to draw")
    title, wanted = spec.detail_tables[0]
    columns = read_csv_file(Path(table_csv), "table").columns
    present = [m for m in wanted if f"{m}_mean" in columns]
    if not present:
        raise InputError(f"{table_csv}: none of the metrics of '{title}' ({', '.join(wanted)})")
    return plot_task(table_csv, png, task, looks, metrics=present, title=title)
