"""Predicted vs measured ln IC50 of drug-response runs, one panel per model, with y = x."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from benchmarks.figures import read_csv_file, style
from benchmarks.figures.colours import model_colours, model_kind
from benchmarks.figures.style import TICK_SIZE, as_bool
from benchmarks.metrics import pearson
from benchmarks.records import RUN_RECORD
from benchmarks.tasks import setting_label
from celllm.errors import InputError


def _nan_if_none(value) -> float:
    return float("nan") if value is None else value


def _read_predictions(path) -> pd.DataFrame:
    path = Path(path)
    frame = read_csv_file(path)
    missing = [c for c in ("true", "predicted") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: not a drug-response predictions file (missing columns: {', '.join(missing)})")
    values = frame[["true", "predicted"]].apply(pd.to_numeric, errors="coerce")
    if frame.empty or values.isna().any().any():
        raise InputError(f"{path}: 'true' and 'predicted' must be numbers on every row (ln IC50)")
    frame[["true", "predicted"]] = values
    return frame


def _sibling_record(path) -> dict:
    """The run record beside a predictions file, if any (kind, dataset, setting, simulated): run.json,
    written by the run that wrote the predictions."""
    record = Path(path).with_name(RUN_RECORD)
    try:
        return json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}


def _pearson_text(per_seed: list[float]) -> str:
    """Pearson r as the tables report it: per seed, then mean ± sd; undefined where a seed's predictions are constant."""
    defined = [r for r in per_seed if not np.isnan(r)]
    if not defined:
        return "Pearson r = n/a (constant)"
    text = f"r = {np.mean(defined):.2f}" + (f" ± {np.std(defined, ddof=1):.2f}" if len(defined) > 1 else "")
    if len(defined) < len(per_seed):
        return f"{text} ({len(defined)}/{len(per_seed)} seeds)"
    return f"Pearson {text}"


def plot_predicted_vs_measured(prediction_csvs: dict, png, looks: dict | None = None):
    """Predicted vs measured ln IC50 of the test pairs of every seed, one panel per named model, with y = x.
    `looks`: the registered models' kinds and colours (benchmarks.registry.looks)."""
    if not prediction_csvs:
        raise InputError("no prediction files given for the predicted-vs-measured figure")
    panels = []
    for model, paths in prediction_csvs.items():
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise InputError(f"no prediction files given for model {model}")
        frames = [_read_predictions(p) for p in paths]
        record = _sibling_record(paths[0])
        per_seed = [_nan_if_none(pearson(f["true"], f["predicted"])) for f in frames]
        panels.append(
            {
                "model": str(model),
                "data": pd.concat(frames, ignore_index=True),
                "n_seeds": len(paths),
                "r": per_seed,
                "kind": record.get("kind") or model_kind(str(model), looks),
                "record": record,
            }
        )
    style.setup()
    n = len(panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    side = 2.3 if ncols == 3 else 2.7
    figure, axes = plt.subplots(
        nrows, ncols, figsize=(side * ncols + 0.3, side * nrows + 1.0), squeeze=False, sharex=True, sharey=True, layout="constrained"
    )
    values = np.concatenate([np.r_[p["data"]["true"].to_numpy(), p["data"]["predicted"].to_numpy()] for p in panels])
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low or 1.0)
    limits = (low - pad, high + pad)
    colours = model_colours([(p["model"], p["kind"]) for p in panels], looks)
    for ax, panel in zip(axes.flat, panels):
        data = panel["data"]
        ax.plot(limits, limits, color="0.4", linestyle="--", linewidth=0.8, zorder=1)
        ax.scatter(
            data["true"], data["predicted"], s=6, alpha=0.45, color=colours[panel["model"]], edgecolors="none", rasterized=True, zorder=2
        )
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
            task = records[0].get("task")
            where += f", {' / '.join(setting_label(task, s).split(':')[0] for s in settings)} split"
    seeds = sorted({p["n_seeds"] for p in panels})
    seed_text = f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}" if len(seeds) == 1 else "all seeds"
    pairs = {len(p["data"]) for p in panels}
    if len(pairs) == 1:
        seed_text += f" ({pairs.pop()} per model)"
    figure.suptitle(
        f"Predicted vs measured ln IC50{where}\ntest pairs of {seed_text}; r: mean ± sd over seeds; dashed line: y = x",
        fontsize=plt.rcParams["axes.titlesize"],
    )
    style.save(figure, png)
    return figure
