"""Run records -> tables: every model's metrics as mean and spread over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from celllm.errors import InputError
from celllm.io import atomic_path

KEYS = ["task", "setting", "dataset", "simulated", "model", "kind"]
KIND_ORDER = {"celllm": 0, "baseline": 1, "control": 2}


def load_runs(paths) -> pd.DataFrame:
    """One row per run: identifying keys, seed and every metric."""
    rows = []
    for path in paths:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: unreadable run record ({exc})") from None
        rows.append({**{k: record[k] for k in KEYS}, "seed": record["seed"], **record["metrics"]})
    if not rows:
        raise InputError("no run records to aggregate")
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample sd and seed count of each metric per (task, setting, dataset, model)."""
    metrics = [c for c in runs.columns if c not in KEYS and c != "seed"]
    runs = runs.astype({m: float for m in metrics})  # undefined metrics (None) become NaN
    grouped = runs.groupby(KEYS, sort=False)
    table = grouped[metrics].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table["n_seeds"] = grouped["seed"].nunique()
    table = table.reset_index()
    table["_kind"] = table["kind"].map(KIND_ORDER)
    return table.sort_values(["task", "setting", "dataset", "_kind", "model"]).drop(columns="_kind").reset_index(drop=True)


def _mean_sd(row, metric: str) -> str:
    """'mean ± sd'; a metric a model leaves undefined (e.g. Pearson of constant predictions) shows as '–'."""
    mean, sd = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if mean is None or pd.isna(mean):
        return "–"
    return f"{mean:.3f} ± {0 if pd.isna(sd) else sd:.3f}"


def to_markdown(table: pd.DataFrame, metrics: list[str]) -> str:
    """A readable table per dataset: 'mean ± sd' cells, data provenance in the heading."""
    lines = []
    for (task, setting, dataset, simulated), part in table.groupby(["task", "setting", "dataset", "simulated"], sort=False):
        data = "simulated data" if simulated else "real data"
        lines += [f"### {task} / {dataset} ({setting}; {data})", ""]
        lines.append("| model | kind | " + " | ".join(metrics) + " | seeds |")
        lines.append("|---|---|" + "---|" * len(metrics) + "---|")
        for _, row in part.iterrows():
            cells = [_mean_sd(row, m) for m in metrics]
            lines.append(f"| {row['model']} | {row['kind']} | " + " | ".join(cells) + f" | {row['n_seeds']} |")
        lines.append("")
    return "\n".join(lines)


def write_tables(run_paths, csv_path, md_path, metrics: list[str]) -> pd.DataFrame:
    table = summarise(load_runs(run_paths))
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(md_path) as tmp:
        tmp.write_text(to_markdown(table, metrics))
    return table
