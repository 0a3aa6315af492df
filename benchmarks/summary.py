"""results/summary.md: the numbers a run's tables hold, with the commit and machine they came from.

The README quotes this file (between SUMMARY_BEGIN and SUMMARY_END, put there by
`python -m benchmarks.summary README.md results/summary.md`), so the numbers it
discusses are the ones a run wrote, never typed by hand. Per (task, dataset,
setting): each model's metrics that the task shows in summaries (its first two
headline metrics unless it names others), mean ± sd over seeds, best first, as the
task's table ranks them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import pandas as pd

from celllm.errors import InputError
from celllm.outputs import atomic_path

SUMMARY_BEGIN, SUMMARY_END = "<!-- summary: begin (benchmarks/summary.py writes this block) -->", "<!-- summary: end -->"
SHOWN_METRICS = 2  # headline metrics per model, where a task names none to show


def shown_metrics(task) -> list[str]:
    """What the summary shows of a task (benchmarks.tasks.spec.Task)."""
    return list(task.summary_metrics) or list(task.headline[:SHOWN_METRICS])


def machine() -> str:
    """The CPU, the cores the run could use, the system and the library versions: what numbers depend on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}, torch {torch.__version__}"


def commits(records) -> list[str]:
    """The commits the run records name (more than one if some runs were kept from an earlier commit)."""
    found = set()
    for path in records:
        try:
            found.add(json.loads(Path(path).read_text())["provenance"]["git_commit"])
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path}: no provenance to name its commit ({type(exc).__name__})") from None
    return sorted(found)


def _cell(row, metric: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if pd.isna(mean):
        return "–"
    return f"{mean:.3f}" if pd.isna(std) or row["n_seeds"] < 2 else f"{mean:.3f} ± {std:.3f}"


def summary(tables: dict[str, str], records, shown: dict[str, list[str]]) -> str:
    """The Markdown summary of the task tables `tables` (task -> .csv), showing the metrics `shown`
    (task -> metric names), naming the commits of `records`."""
    found = commits(records)
    lines = [
        f"Measured at commit {', '.join(c[:12] for c in found)} on {machine()}.",
        "Mean ± sd over seeds; each table best first by its first metric (results/tables/ has every metric).",
    ]
    for task, path in tables.items():
        table = pd.read_csv(path)
        table = table[table["kind"] != "reference"]
        metrics = [m for m in shown[task] if f"{m}_mean" in table]
        for (dataset, setting), group in table.groupby(["dataset", "setting"], sort=True):
            lines += [
                "",
                f"**{task} / {dataset} / {setting}**",
                "",
                f"| model | kind | {' | '.join(metrics)} |",
                "|---|---|" + "---|" * len(metrics),
            ]
            for _, row in group.sort_values(["rank", "model"]).iterrows():
                lines.append(f"| {row['model']} | {row['kind']} | {' | '.join(_cell(row, m) for m in metrics)} |")
    return "\n".join(lines) + "\n"


def write_summary(tables: dict[str, str], records, shown: dict[str, list[str]], out) -> None:
    text = summary(tables, records, shown)
    with atomic_path(out) as tmp:
        tmp.write_text(text)


def quote_in(readme, summary_path) -> bool:
    """Put the summary file's text between the README's markers; returns whether the README changed."""
    readme, text = Path(readme), Path(summary_path).read_text()
    current = readme.read_text()
    if current.count(SUMMARY_BEGIN) != 1 or current.count(SUMMARY_END) != 1:
        raise InputError(f"{readme}: needs one '{SUMMARY_BEGIN}' line and one '{SUMMARY_END}' line around the quoted summary")
    head, rest = current.split(SUMMARY_BEGIN)
    _, tail = rest.split(SUMMARY_END)
    updated = f"{head}{SUMMARY_BEGIN}\n{text}{SUMMARY_END}{tail}"
    if updated != current:
        with atomic_path(readme) as tmp:
            tmp.write_text(updated)
    return updated != current


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Quote a run's results/summary.md in the README, between its markers.")
    parser.add_argument("readme")
    parser.add_argument("summary")
    args = parser.parse_args(argv)
    try:
        changed = quote_in(args.readme, args.summary)
    except InputError as exc:
        print(f"benchmarks.summary: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.readme}: {'updated from' if changed else 'already quotes'} {args.summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
