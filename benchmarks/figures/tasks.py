"""Benchmark task figures, drawn from the tables (results/tables/{task}.csv) and run records.

Bar figures show every measured model's mean over seeds with the sample sd as
error bar, one horizontal bar per model so that long model names stay readable.
Models are coloured by kind: CellLM models in blues, baselines in oranges,
controls in greys, the same model in the same colour in every figure. Rows of
kind "reference" (published numbers, benchmarks/references.tsv) are never drawn
as bars: they appear below the measured models as black diamonds labelled
"published". A metric a model leaves undefined (NaN, e.g. the Pearson of a
control's constant predictions) is marked "n/a".

Every function takes input paths and the output PNG path, writes the PNG and the
PDF beside it (`style.save`), returns the (closed) figure, and raises
`InputError` naming the file for a missing or malformed input.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from benchmarks.figures import read_json_object, style
from celllm.errors import InputError

KEYS = ["task", "setting", "dataset", "simulated", "model", "kind"]
KIND_ORDER = {"celllm": 0, "baseline": 1, "control": 2}
KIND_LABELS = {"celllm": "CellLM", "baseline": "baseline", "control": "control"}

# Fixed colours for the models the suite ships, so a model looks the same in every figure;
# other models take the next free shade of their kind's family.
MODEL_COLOURS = {
    "celllm_probe": "#08519c",
    "celllm_finetune": "#3182bd",
    "celllm_no_contrastive_probe": "#6baed6",
    "celllm_untrained_probe": "#9ecae1",
    "logreg_l1": "#a63603",
    "mlp": "#e6550d",
    "random_forest": "#fd8d3c",
    "deepcdr_mlp": "#7f2704",
    "ridge_ecfp": "#f16913",
    "majority": "#525252",
    "stratified_random": "#969696",
    "drug_mean": "#525252",
    "drug_mean_cell_offset": "#969696",
}
FAMILIES = {
    "celllm": ["#08306b", "#2171b5", "#4292c6", "#084594", "#6baed6", "#9ecae1"],
    "baseline": ["#8c2d04", "#d94801", "#f16913", "#fd8d3c", "#a63603", "#fdae6b"],
    "control": ["#525252", "#969696", "#737373", "#bdbdbd"],
    "other": ["#6a51a3", "#807dba", "#9e9ac8"],
}
KIND_SWATCH = {"celllm": "#3182bd", "baseline": "#e6550d", "control": "#969696"}

METRIC_LABELS = {
    "accuracy": "accuracy",
    "macro_f1": "macro F1",
    "weighted_f1": "weighted F1",
    "f1": "F1 (sensitive class)",
    "auroc": "AUROC",
    "aupr": "AUPR",
    "pearson": "Pearson r",
    "per_drug_pearson": "per-drug Pearson r",
    "spearman": "Spearman ρ",
    "rmse": "RMSE (ln IC50)",
    "mae": "MAE (ln IC50)",
    "r2": "R²",
}
UNIT_INTERVAL = {"accuracy", "macro_f1", "weighted_f1", "f1", "auroc", "aupr"}
CHANCE = {"auroc": 0.5, "aupr": None}
SETTING_LABELS = {
    "standard": "standard split",
    "full": "full training set",
    "few_shot": "few-shot",
    "warm": "warm: unseen cell line–drug pairs",
    "cold_cell": "cold cell: unseen cell lines",
    "cold_drug": "cold drug: unseen drugs",
}
SETTING_STYLES = [  # (hatch, alpha) per side-by-side setting
    ("", 1.0),
    ("////", 0.55),
    ("...", 0.4),
    ("xx", 0.4),
]
TICK_SIZE = 8  # model names; >= 7 pt at print size
NOTE_SIZE = 7


# ---------------------------------------------------------------- shared helpers
def model_colours(models_by_kind: dict[str, list[str]] | list[tuple[str, str]]) -> dict[str, str]:
    """Colour of each (model, kind): its fixed colour, else the next unused shade of its kind's family."""
    pairs = models_by_kind if isinstance(models_by_kind, list) else [(m, k) for k, ms in models_by_kind.items() for m in ms]
    colours, used = {}, set()
    for model, kind in pairs:
        if model in MODEL_COLOURS:
            colours[model] = MODEL_COLOURS[model]
            used.add(MODEL_COLOURS[model])
    for model, kind in pairs:
        if model in colours:
            continue
        family = FAMILIES.get(kind, FAMILIES["other"])
        free = [c for c in family if c not in used] or family
        colours[model] = free[0]
        used.add(free[0])
    return colours


def guess_kind(model: str) -> str:
    """Kind of a model known only by name (predictions without a run record next to them)."""
    if model.startswith("celllm"):
        return "celllm"
    if model in {"majority", "stratified_random", "drug_mean", "drug_mean_cell_offset"}:
        return "control"
    return "baseline"


def as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value) if not pd.isna(value) else False


def dataset_label(dataset: str, simulated: bool) -> str:
    return f"{dataset} ({'simulated' if simulated else 'real data'})"


def wrap_label(text: str, width: int = 22) -> str:
    """Wrap at spaces and after '/', never inside a word: long names stay on a few short lines."""
    pieces = [p for p in re.split(r"(?<=/)|\s+", str(text)) if p]
    lines, line = [], ""
    for piece in pieces:
        sep = "" if line.endswith("/") or not line else " "
        if line and len(line) + len(sep) + len(piece) > width:
            lines.append(line)
            line = piece
        else:
            line += sep + piece
    lines.append(line)
    return "\n".join(lines)


def read_table(table_csv, task: str, metrics: list[str]) -> pd.DataFrame:
    """A results table (benchmarks/aggregate.py layout) restricted to `task`; checks the columns the figure needs.

    `rank` and `beats_control` are not needed (older tables lack them); a missing
    `<metric>_std` counts as no spread.
    """
    path = Path(table_csv)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        table = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV table ({type(exc).__name__}: {exc})") from None
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
    models = sorted(seen, key=lambda m: (KIND_ORDER.get(kinds[m], 3), seen.index(m)))
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


def _bar_panel(ax, part: pd.DataFrame, metric: str, models: list[str], references: list[str], colours: dict,
               groups: list[str] | None, group_column: str = "setting") -> None:
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
                ax.annotate("n/a (undefined)", xy=(0, y), xytext=(3, 0), textcoords="offset points", va="center", ha="left",
                            fontsize=NOTE_SIZE, color="0.35", style="italic")
                continue
            ax.barh(y, mean, height=height * 0.92, color=colours[model], alpha=alpha, hatch=hatch,
                    edgecolor="white" if not hatch else colours[model], linewidth=0.6)
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
    chance = CHANCE.get(metric)
    if chance is not None:
        ax.axvline(chance, color="0.4", linestyle=":", linewidth=0.9, zorder=0)
    if metric in UNIT_INTERVAL:
        ax.set_xlim(0, 1.0)
    else:
        low, high = ax.get_xlim()
        ax.set_xlim(min(0.0, low), max(high, 0.0))
        if metric in {"pearson", "per_drug_pearson", "spearman"}:
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
    handles = [Patch(facecolor=KIND_SWATCH[k], edgecolor="none", label=KIND_LABELS[k]) for k in KIND_ORDER if k in kinds]
    if groups and len(groups) > 1:
        for g, group in enumerate(groups):
            hatch, alpha = SETTING_STYLES[g % len(SETTING_STYLES)]
            handles.append(Patch(facecolor="0.55", alpha=alpha, hatch=hatch, edgecolor="0.3", label=(group_labels or SETTING_LABELS).get(group, group)))
    if has_references:
        handles.append(Line2D([], [], marker="D", color="black", linestyle="none", markersize=4.5, label="published (not measured here)"))
    return handles


def _bar_figure(table: pd.DataFrame, rows: list[tuple[str, pd.DataFrame]], metrics: list[str], title: str,
                groups: list[str] | None = None, width: float = 7.0):
    """One row of panels per (label, sub-table), one panel per metric; models share the y axis within a row.

    A single grid (a thin header row above each row of panels) keeps the panels of
    every row aligned, whatever the width of each row's model names.
    """
    models_all, _ = _order(table)
    kinds_all = dict(zip(table["model"], table["kind"]))
    colours = model_colours([(m, kinds_all[m]) for m in models_all])
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
        head.text(0.5, 0.0, label, transform=head.transAxes, ha="center", va="bottom", fontweight="bold",
                  fontsize=plt.rcParams["axes.titlesize"])
        first = None
        for c, metric in enumerate(metrics):
            ax = figure.add_subplot(grid[2 * r + 1, c], sharey=first)
            first = first or ax
            _bar_panel(ax, part, metric, models, references, colours, groups)
            ax.set_xlabel(METRIC_LABELS.get(metric, metric))
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
    handles = _legend_handles(kinds, groups, (table["kind"] == "reference").any())
    if any(CHANCE.get(m) is not None for m in metrics):
        handles.append(Line2D([], [], color="0.4", linestyle=":", linewidth=0.9, label="chance (AUROC 0.5)"))
    figure.suptitle(title, fontsize=plt.rcParams["axes.titlesize"] + 1)
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles) if len(handles) <= 5 else 3, frameon=False,
                  fontsize=TICK_SIZE, handlelength=1.6, columnspacing=1.2)
    return figure


def _provenance(table: pd.DataFrame) -> str:
    measured = table[table["kind"] != "reference"]
    simulated = measured["simulated"].unique()
    if len(simulated) == 1:
        return " (simulated)" if simulated[0] else " (real data)"
    return ""


# ---------------------------------------------------------------- annotation
ANNOTATION_METRICS = ["accuracy", "macro_f1"]


def plot_annotation(table_csv, png):
    """Accuracy and macro F1 per model (mean ± sd over seeds), one row of panels per dataset."""
    table = read_table(table_csv, "annotation", ANNOTATION_METRICS)
    style.setup()
    rows = []
    for (dataset, setting), part in table.groupby(["dataset", "setting"], sort=False):
        simulated = bool(part.loc[part["kind"] != "reference", "simulated"].any())
        suffix = "" if setting == "standard" else f", {SETTING_LABELS.get(setting, setting)}"
        rows.append((f"{dataset_label(dataset, simulated)}{suffix}", part))
    figure = _bar_figure(table, rows, ANNOTATION_METRICS, f"Cell-type annotation on held-out cells{_provenance(table)}: {_seed_note(table)}")
    style.save(figure, png)
    return figure


# ---------------------------------------------------------------- drug sensitivity
SENSITIVITY_METRICS = ["f1", "auroc"]
SENSITIVITY_SETTINGS = ["full", "few_shot"]


def plot_drug_sensitivity(table_csv, png):
    """F1 and AUROC per model, the full training set and few-shot side by side, one row per dataset."""
    table = read_table(table_csv, "drug_sensitivity", SENSITIVITY_METRICS)
    present = list(dict.fromkeys(table["setting"]))
    settings = [s for s in SENSITIVITY_SETTINGS if s in present] + [s for s in present if s not in SENSITIVITY_SETTINGS]
    style.setup()
    rows = []
    for dataset, part in table.groupby("dataset", sort=False):
        simulated = bool(part.loc[part["kind"] != "reference", "simulated"].any())
        rows.append((dataset_label(dataset, simulated), part))
    figure = _bar_figure(table, rows, SENSITIVITY_METRICS,
                         f"Drug sensitivity of single cells{_provenance(table)}: {_seed_note(table)}", groups=settings)
    style.save(figure, png)
    return figure


# ---------------------------------------------------------------- drug response
RESPONSE_METRICS = ["pearson", "per_drug_pearson", "rmse"]
RESPONSE_SETTINGS = ["warm", "cold_cell", "cold_drug"]


def plot_drug_response(table_csv, png):
    """Pearson, per-drug Pearson and RMSE of ln IC50 per model, one row of panels per split (warm / cold cell / cold drug)."""
    table = read_table(table_csv, "drug_response", RESPONSE_METRICS)
    present = list(dict.fromkeys(table["setting"]))
    settings = [s for s in RESPONSE_SETTINGS if s in present] + [s for s in present if s not in RESPONSE_SETTINGS]
    datasets = list(dict.fromkeys(table["dataset"]))
    style.setup()
    rows = []
    for dataset in datasets:
        for setting in settings:
            part = table[(table["dataset"] == dataset) & (table["setting"] == setting)]
            if part.empty:
                continue
            simulated = bool(part.loc[part["kind"] != "reference", "simulated"].any())
            name = SETTING_LABELS.get(setting, setting)
            rows.append((name if len(datasets) == 1 else f"{dataset_label(dataset, simulated)}: {name}", part))
    where = f" on {dataset_label(datasets[0], bool(table.loc[table['kind'] != 'reference', 'simulated'].any()))}" if len(datasets) == 1 else _provenance(table)
    figure = _bar_figure(table, rows, RESPONSE_METRICS, f"Drug response (ln IC50){where}: {_seed_note(table)}")
    style.save(figure, png)
    return figure


# ---------------------------------------------------------------- confusion matrix
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
            raise InputError(f"{path}: run record of {key[3]} on {key[2]} ({key[1]}), but {first[0]} is {first[1][3]} on {first[1][2]} ({first[1][1]}); "
                             "give the records of one dataset and model")
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
    sns.heatmap(fraction * 100, ax=ax, cmap="Blues", vmin=0, vmax=100, square=True, annot=text if annotate else False, fmt="",
                annot_kws={"fontsize": 7.5 if n <= 12 else 7}, linewidths=0.4, linecolor="white",
                cbar_kws={"label": "% of the true type's test cells", "shrink": 0.8})
    ax.set_xticks(np.arange(n) + 0.5)
    ax.set_yticks(np.arange(n) + 0.5)
    ax.set_xticklabels(order, rotation=45, ha="right", rotation_mode="anchor", fontsize=TICK_SIZE)
    ax.set_yticklabels(y_labels, rotation=0, fontsize=TICK_SIZE)
    ax.set_xlabel("predicted cell type")
    ax.set_ylabel(f"true cell type (test cells, {n_runs} seeds pooled)")
    simulated = as_bool(record0.get("simulated", False))
    figure.suptitle(f"{record0.get('model')} on {dataset_label(record0.get('dataset'), simulated)}\n"
                    f"confusion matrix, {n_runs} seed{'s' if n_runs != 1 else ''} summed, rows normalised; pooled accuracy {accuracy:.2f}",
                    fontsize=plt.rcParams["axes.titlesize"])
    style.save(figure, png)
    return figure


# ---------------------------------------------------------------- predicted vs measured
def _read_predictions(path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({type(exc).__name__}: {exc})") from None
    missing = [c for c in ("true", "predicted") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: not a drug-response predictions file (missing columns: {', '.join(missing)})")
    values = frame[["true", "predicted"]].apply(pd.to_numeric, errors="coerce")
    if frame.empty or values.isna().any().any():
        raise InputError(f"{path}: 'true' and 'predicted' must be numbers on every row (ln IC50)")
    frame[["true", "predicted"]] = values
    return frame


def _sibling_record(path) -> dict:
    """The run record beside a predictions file, if any (kind, dataset, setting, simulated)."""
    record = Path(path).with_name("metrics.json")
    try:
        return json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:  # undefined as in benchmarks/metrics.py
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _pearson_text(per_seed: list[float]) -> str:
    """Pearson r as the tables report it: per seed, then mean ± sd; undefined where a seed's predictions are constant."""
    defined = [r for r in per_seed if not np.isnan(r)]
    if not defined:
        return "Pearson r = n/a (constant)"
    text = f"r = {np.mean(defined):.2f}" + (f" ± {np.std(defined, ddof=1):.2f}" if len(defined) > 1 else "")
    if len(defined) < len(per_seed):
        return f"{text} ({len(defined)}/{len(per_seed)} seeds)"
    return f"Pearson {text}"


def plot_predicted_vs_measured(prediction_csvs: dict, png):
    """Predicted vs measured ln IC50 of the test pairs of every seed, one panel per named model, with y = x."""
    if not prediction_csvs:
        raise InputError("no prediction files given for the predicted-vs-measured figure")
    panels = []
    for model, paths in prediction_csvs.items():
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise InputError(f"no prediction files given for model {model}")
        frames = [_read_predictions(p) for p in paths]
        record = _sibling_record(paths[0])
        per_seed = [_pearson(f["true"].to_numpy(), f["predicted"].to_numpy()) for f in frames]
        panels.append({"model": str(model), "data": pd.concat(frames, ignore_index=True), "n_seeds": len(paths), "r": per_seed,
                       "kind": record.get("kind") or guess_kind(str(model)), "record": record})
    style.setup()
    n = len(panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    side = 2.3 if ncols == 3 else 2.7
    figure, axes = plt.subplots(nrows, ncols, figsize=(side * ncols + 0.3, side * nrows + 1.0), squeeze=False,
                                sharex=True, sharey=True, layout="constrained")
    values = np.concatenate([np.r_[p["data"]["true"].to_numpy(), p["data"]["predicted"].to_numpy()] for p in panels])
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low or 1.0)
    limits = (low - pad, high + pad)
    colours = model_colours([(p["model"], p["kind"]) for p in panels])
    for ax, panel in zip(axes.flat, panels):
        data = panel["data"]
        ax.plot(limits, limits, color="0.4", linestyle="--", linewidth=0.8, zorder=1)
        ax.scatter(data["true"], data["predicted"], s=6, alpha=0.45, color=colours[panel["model"]], edgecolors="none",
                   rasterized=True, zorder=2)
        ax.set_title(f"{panel['model']}\n{_pearson_text(panel['r'])}", fontsize=plt.rcParams["axes.titlesize"] - 1)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.set_xlim(limits)
        ax.set_ylim(limits)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=TICK_SIZE)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("measured ln IC50")
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted ln IC50")
    records = [p["record"] for p in panels if p["record"]]
    where = ""
    if records:
        datasets = list(dict.fromkeys(r.get("dataset") for r in records if r.get("dataset")))
        settings = list(dict.fromkeys(r.get("setting") for r in records if r.get("setting")))
        simulated = any(as_bool(r.get("simulated", False)) for r in records)
        if datasets:
            where = f", {', '.join(datasets)}{' (simulated)' if simulated else ''}"
        if settings:
            where += f", {' / '.join(SETTING_LABELS.get(s, s).split(':')[0] for s in settings)} split"
    seeds = sorted({p["n_seeds"] for p in panels})
    seed_text = f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}" if len(seeds) == 1 else "all seeds"
    pairs = {len(p["data"]) for p in panels}
    if len(pairs) == 1:
        seed_text += f" ({pairs.pop()} per model)"
    figure.suptitle(f"Predicted vs measured ln IC50{where}\ntest pairs of {seed_text}; r: mean ± sd over seeds; dashed line: y = x",
                    fontsize=plt.rcParams["axes.titlesize"])
    style.save(figure, png)
    return figure
