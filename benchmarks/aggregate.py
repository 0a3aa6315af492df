"""Run records -> tables: every model's metrics as mean and spread over seeds.

Each (task, setting, dataset) table ranks the models by the task's first
headline metric, says whether each model beats the best control, and shows
published numbers (benchmarks/references.tsv) beside the measured ones on
real data, marked as references and never ranked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmarks.metrics import metric as metric_of
from benchmarks.registry import KINDS
from celllm.errors import InputError
from celllm.io import read_annotated_tsv
from celllm.outputs import atomic_path

KEYS = ["task", "setting", "dataset", "simulated", "model", "kind"]
KIND_ORDER = {kind: i for i, kind in enumerate((*KINDS, "reference"))}  # published numbers last
REFERENCES = Path(__file__).with_name("references.tsv")
GROUP = ["task", "setting", "dataset"]


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


def rank_models(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Add `rank` (1 = best by `metric` within each task/setting/dataset) and `beats_control`
    (the model's mean is strictly better than the best control's; empty for controls)."""
    table = table.copy()
    column = f"{metric}_mean"
    sign = 1.0 if metric_of(metric).lower_is_better else -1.0  # rank on sign * mean, ascending
    score = sign * table[column]
    table["rank"] = score.groupby([table[k] for k in GROUP]).rank(method="min").astype("Int64")
    best_control = score.where(table["kind"] == "control").groupby([table[k] for k in GROUP]).transform("min")
    beats = (score < best_control).where(best_control.notna() & score.notna())
    table["beats_control"] = beats.where(table["kind"] != "control").map({True: "yes", False: "no"})
    return table


def load_references(path=REFERENCES) -> pd.DataFrame:
    """Published numbers: task, setting, dataset ('*' = any real dataset), model, metric, value, source."""
    return read_annotated_tsv(path, "reference table").astype({"value": float})


def reference_rows(table: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """The references that apply to the real-data tables present, one row per (table, reference model)."""
    rows = []
    for (task, setting, dataset), _ in table[~table["simulated"].astype(bool)].groupby(GROUP, sort=False):
        chosen = references[(references["task"] == task) & (references["setting"] == setting) & references["dataset"].isin([dataset, "*"])]
        for model, entries in chosen.groupby("model", sort=False):
            row = {
                "task": task,
                "setting": setting,
                "dataset": dataset,
                "simulated": False,
                "model": model,
                "kind": "reference",
                "source": "; ".join(dict.fromkeys(entries["source"])),
            }
            row.update({f"{m}_mean": v for m, v in zip(entries["metric"], entries["value"])})
            rows.append(row)
    return pd.DataFrame(rows)


def _mean_sd(row, metric: str) -> str:
    """'mean ± sd'; the mean alone where there is no spread to show (one seed); a metric a model
    leaves undefined (e.g. Pearson of constant predictions) shows as '–'."""
    mean, sd = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if mean is None or pd.isna(mean):
        return "–"
    return f"{mean:.3f}" if sd is None or pd.isna(sd) else f"{mean:.3f} ± {sd:.3f}"


def to_markdown(table: pd.DataFrame, metrics: list[str]) -> str:
    """A readable table per dataset: rank, 'mean ± sd' cells, whether a model beats the best control;
    published reference rows last, in italics; data provenance in the heading."""
    lines = []
    for (task, setting, dataset), part in table.groupby(GROUP, sort=False):
        simulated = bool(part["simulated"].iloc[0])
        lines += [f"### {task} / {dataset} ({setting}; {'simulated data' if simulated else 'real data'})", ""]
        lines.append("| rank | model | kind | " + " | ".join(metrics) + " | beats control | seeds |")
        lines.append("|---|---|---|" + "---|" * len(metrics) + "---|---|")
        for _, row in part.iterrows():
            cells = [_mean_sd(row, m) for m in metrics]
            if row["kind"] == "reference":
                cells = [c.split(" ±")[0] for c in cells]
                lines.append(f"| – | *{row['model']}* | *published* | " + " | ".join(cells) + " | – | – |")
                continue
            beats = row.get("beats_control")
            lines.append(
                f"| {row['rank']} | {row['model']} | {row['kind']} | "
                + " | ".join(cells)
                + f" | {'–' if pd.isna(beats) else beats} | {row['n_seeds']} |"
            )
        lines += ["", *_recipes(part)]
        if (part["kind"] == "reference").any():
            lines += ["", "*published*: numbers from the literature on the real dataset (benchmarks/references.tsv), not measured here."]
        lines.append("")
    return "\n".join(lines)


def _recipes(part: pd.DataFrame) -> list[str]:
    """Under a table, what each CellLM row is: whose weights, and whose recipe (the model's registered summary)."""
    from benchmarks import registry

    models = [m for m in part.loc[part["kind"] == "celllm", "model"] if m in registry.discover()]
    return [f"- *{m}*: {registry.get(m).summary}" for m in models]


def detail_markdown(table: pd.DataFrame, title: str, metrics) -> str:
    """A further table per dataset under the headline ones: model and `metrics` (those the runs have), same order."""
    measured = table[table["kind"] != "reference"]
    metrics = [m for m in metrics if f"{m}_mean" in measured and measured[f"{m}_mean"].notna().any()]
    if not metrics:
        return ""
    lines = [f"## {title}", ""]
    for (task, setting, dataset), part in measured.groupby(GROUP, sort=False):
        lines += [f"### {task} / {dataset} ({setting})", ""]
        lines.append("| model | kind | " + " | ".join(metric_of(m).label for m in metrics) + " |")
        lines.append("|---|---|" + "---|" * len(metrics))
        for _, row in part.iterrows():
            lines.append(f"| {row['model']} | {row['kind']} | " + " | ".join(_mean_sd(row, m) for m in metrics) + " |")
        lines.append("")
    return "\n".join(lines)


def write_tables(run_paths, csv_path, md_path, metrics: list[str], references=REFERENCES, details=()) -> pd.DataFrame:
    """The task's tables from its run records: every metric in the CSV; in the Markdown, the headline
    `metrics` per dataset, then each (title, metrics) of `details`."""
    table = rank_models(summarise(load_runs(run_paths)), metrics[0])
    extra = reference_rows(table, load_references(references)) if references else pd.DataFrame()
    if not extra.empty:  # each table's reference rows right after its measured rows
        blocks = []
        for key, part in table.groupby(GROUP, sort=False):
            blocks += [part, extra[(extra[GROUP] == pd.Series(key, index=GROUP)).all(axis=1)]]
        table = pd.concat(blocks, ignore_index=True).astype({"n_seeds": "Int64"})
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    text = "\n".join([to_markdown(table, metrics), *(detail_markdown(table, title, shown) for title, shown in details)])
    with atomic_path(md_path) as tmp:
        tmp.write_text(text)
    return table
