"""Performance figures from the perf benchmarks' JSON records (benchmarks/perf/dnc.py, tokens.py).

Each function writes PNG + PDF through `style.save`, returns the (closed)
figure, and raises `InputError` naming the file for a missing or malformed record.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from benchmarks.figures import read_json_object, style
from benchmarks.figures.style import wrap_label
from celllm.errors import InputError

METHOD_STYLE = {  # divide-and-conquer is CellLM's step: CellLM blue; the plain full-batch step: baseline orange
    "full": {"label": "full batch (one forward + backward)", "color": "#e6550d", "marker": "o"},
    "dnc": {"label": "divide-and-conquer", "color": "#08519c", "marker": "s"},
}
MODE_STYLE = {
    "nonzero_dynamic": ("non-zero genes, padded per batch (CellLM)", "#08519c"),
    "nonzero_fixed": ("non-zero genes, fixed length (released code)", "#6baed6"),
    "dense": ("every gene, zeros included (scBERT style)", "#e6550d"),
}


def _read_record(path, benchmark: str) -> dict:
    record = read_json_object(path)
    if record.get("benchmark", benchmark) != benchmark:
        raise InputError(f"{path}: not a '{benchmark}' benchmark record (found {record.get('benchmark')!r})")
    return record


def _where(record: dict) -> str:
    env = record.get("environment") or {}
    device = env.get("gpu") or env.get("device") or "unknown device"
    threads = env.get("torch_threads")
    return f"{device}" + (f", {threads} CPU threads" if threads and str(env.get("device", "")).startswith("cpu") else "")


def _target_text(target: dict | None, name: str) -> str:
    if not target or target.get("ratio") is None:
        return f"{name} not measured"
    met = {True: "met", False: "not met"}.get(target.get("met"), "?")
    comparison = {"<=": "≤", ">=": "≥"}.get(target.get("comparison"), target.get("comparison", ""))
    return f"{name} {target['ratio']:.2f} (target {comparison} {target.get('threshold')}: {met})"


def plot_dnc(dnc_json, png):
    """Peak memory and seconds per optimizer step against batch size, full-batch step vs divide-and-conquer."""
    path = Path(dnc_json)
    record = _read_record(path, "dnc")
    runs = record.get("runs")
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) and "method" in r and "batch_size" in r for r in runs):
        raise InputError(f"{path}: no 'runs' with method and batch_size in the dnc record")
    for run in runs:
        if "error" not in run and not all(isinstance(run.get(k), (int, float)) for k in ("peak_mb", "seconds_per_step")):
            raise InputError(f"{path}: run {run['method']} at batch {run['batch_size']} lacks peak_mb or seconds_per_step")
    batch_sizes = sorted({int(r["batch_size"]) for r in runs})
    sub_batch = (record.get("settings") or {}).get("sub_batch_size")

    style.setup()
    figure, axes = plt.subplots(1, 2, figsize=(7.0, 3.0), layout="constrained")
    panels = [
        ("peak_mb", "peak memory (MB)", "Memory of one step\n(peak above model + optimizer state)"),
        ("seconds_per_step", "seconds per step", "Time of one optimizer step\n(median of timed steps; bars: min–max)"),
    ]
    methods = [m for m in METHOD_STYLE if any(r["method"] == m for r in runs)] + sorted({r["method"] for r in runs} - set(METHOD_STYLE))
    for ax, (key, ylabel, title) in zip(axes, panels):
        for method in methods:
            spec = METHOD_STYLE.get(method, {"label": method, "color": "0.4", "marker": "^"})
            label = spec["label"] + (f" (sub-batch {sub_batch} cells)" if method == "dnc" and sub_batch else "")
            failed = [r["batch_size"] for r in runs if r["method"] == method and "error" in r]
            if failed:
                label += f"; × out of memory at {', '.join(map(str, failed))}"
            rows = sorted((r for r in runs if r["method"] == method and "error" not in r), key=lambda r: r["batch_size"])
            x = np.array([r["batch_size"] for r in rows], dtype=float)
            y = np.array([r[key] for r in rows], dtype=float)
            ax.plot(x, y, marker=spec["marker"], color=spec["color"], label=label, linewidth=1.5, markersize=4.5)
            if key == "seconds_per_step":
                spread = [r.get("seconds_all") or [r[key]] for r in rows]
                low = y - np.array([min(s) for s in spread])
                high = np.array([max(s) for s in spread]) - y
                ax.errorbar(x, y, yerr=[low, high], fmt="none", ecolor=spec["color"], elinewidth=0.8, capsize=2)
            for b in failed:  # a step that did not fit: a cross on the top edge, explained in the legend
                ax.plot(
                    [b],
                    [1.0],
                    marker="x",
                    markersize=7,
                    markeredgewidth=1.8,
                    color=spec["color"],
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    zorder=5,
                )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(batch_sizes))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(b) for b in batch_sizes])
        ax.set_xlabel("batch size (cells per step, 2 views each)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=plt.rcParams["axes.titlesize"] - 1)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.tick_params(labelsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    targets = record.get("targets") or {}
    notes = [
        _target_text(targets.get("dnc_memory_flat"), "DnC memory, largest / smallest batch:"),
        _target_text(targets.get("dnc_time_overhead"), "DnC / full-batch seconds per step, worst batch:"),
    ]
    figure.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False, fontsize=8)
    figure.suptitle(
        f"Pretraining step: full batch vs divide-and-conquer ({_where(record)})\n" + "\n".join(notes),
        fontsize=plt.rcParams["axes.titlesize"] - 1,
    )
    style.save(figure, png)
    return figure


def plot_tokens(tokens_json, png):
    """Encoder training throughput (cells/s) and positions per cell for each input representation."""
    path = Path(tokens_json)
    record = _read_record(path, "tokens")
    modes = record.get("modes")
    if (
        not isinstance(modes, list)
        or not modes
        or not all(isinstance(m, dict) and "mode" in m and isinstance(m.get("cells_per_s"), (int, float)) for m in modes)
    ):
        raise InputError(f"{path}: no 'modes' with mode and cells_per_s in the tokens record")
    order = [m for m in MODE_STYLE if any(row["mode"] == m for row in modes)] + [
        row["mode"] for row in modes if row["mode"] not in MODE_STYLE
    ]
    rows = {row["mode"]: row for row in modes}
    dense = rows.get("dense", {}).get("cells_per_s")

    style.setup()
    figure, axes = plt.subplots(
        1, 2, figsize=(7.0, 0.55 * len(order) + 1.5), sharey=True, layout="constrained", gridspec_kw={"width_ratios": [1.4, 1]}
    )
    y = np.arange(len(order))
    colours = [MODE_STYLE.get(m, (m, "0.5"))[1] for m in order]
    speed = np.array([rows[m]["cells_per_s"] for m in order], dtype=float)
    axes[0].barh(y, speed, color=colours, height=0.65)
    for i, m in enumerate(order):
        text = f"{speed[i]:,.0f}" if speed[i] >= 100 else f"{speed[i]:.3g}"
        if dense and m != "dense":
            text += f"  ({speed[i] / dense:.1f}× dense)"
        axes[0].annotate(text, xy=(speed[i], i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    axes[0].set_xlim(0, speed.max() * 1.55)
    axes[0].set_xlabel("cells per second (forward + backward)")
    tokens = np.array([rows[m].get("tokens_per_cell", np.nan) for m in order], dtype=float)
    axes[1].barh(y, tokens, color=colours, height=0.65)
    for i, value in enumerate(tokens):
        if np.isfinite(value):
            axes[1].annotate(f"{value:,.0f}", xy=(value, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    if np.isfinite(tokens).any():
        axes[1].set_xlim(0, np.nanmax(tokens) * 1.3)
    axes[1].set_xlabel("positions per cell (padding included)")
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([wrap_label(MODE_STYLE.get(m, (m,))[0], 24) for m in order], fontsize=8)
    axes[0].set_ylim(len(order) - 0.5, -0.5)
    for ax in axes:
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="x", labelsize=8)
    data = record.get("data") or {}
    settings = record.get("settings") or {}
    shape = []
    if data.get("n_genes"):
        shape.append(f"{data['n_genes']:,} genes")
    zeros = data.get("observed_zero_fraction", data.get("zero_fraction"))
    if zeros is not None:
        shape.append(f"{zeros:.0%} zeros")
    if settings.get("batch_size"):
        shape.append(f"batch {settings['batch_size']} cells")
    figure.suptitle(
        f"Encoder training throughput by input representation\n({_where(record)}; {', '.join(shape)})",
        fontsize=plt.rcParams["axes.titlesize"],
    )
    style.save(figure, png)
    return figure
