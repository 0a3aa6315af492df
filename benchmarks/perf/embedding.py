"""Time of the zero-shot embedding metrics (benchmarks.embedding_metrics) against the number of cells.

Synthetic embeddings of the paper's width (512, CellLM's [CLS]) with cell types and
four donors, as Baron has, are scored metric by metric at a few sizes; each metric's
seconds are fitted as a power of the cell count over the measured sizes and
extrapolated to Zheng68k (68,450 cells) and Baron (8,569 cells). The silhouettes and
the exact kNN are quadratic in cells; Leiden and the kNN transfer are close to linear.

Numbers: `seconds[metric]` per size (one run each, the seed-free ones once per
embedding, as a run computes them), `exponent[metric]` of the fit, `at_paper_size`:
seconds per seed (seed-free metrics once) at the two datasets' sizes.
`python -m benchmarks.perf.embedding --out results/perf/embedding.json`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks import embedding_metrics as em
from benchmarks.perf.common import benchmark_cli, environment, format_table, resolve_device

PAPER_CELLS = {"zheng68k": 68450, "baron": 8569}
DIMS = 512
N_TYPES = 11
N_DONORS = 4


def synthetic_embedding(n_cells: int, dims: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell-type clusters plus donor shifts plus noise: (X, cell types, donors)."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, N_TYPES, n_cells)
    donors = rng.integers(0, N_DONORS, n_cells)
    X = rng.normal(0, 3, (N_TYPES, dims))[types] + rng.normal(0, 1, (N_DONORS, dims))[donors] + rng.normal(0, 2, (n_cells, dims))
    return X.astype(np.float32), types.astype(str), donors.astype(str)


def measure(n_cells: int, dims: int, seed: int) -> dict:
    X, types, donors = synthetic_embedding(n_cells, dims, seed)
    steps = {
        "leiden_ari_nmi": lambda: em.leiden_agreement(X, types, seed=seed),
        "knn_transfer": lambda: em.knn_transfer(X, types, seed=seed),
        "asw_label": lambda: em.label_silhouette(X, types),
        "asw_batch": lambda: em.batch_silhouette(X, types, donors),
        "ilisi": lambda: em.ilisi(X, donors),
    }
    seconds = {}
    for name, step in steps.items():
        began = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - began
    return seconds


def _run_from_args(args: argparse.Namespace) -> dict:
    sizes = sorted(args.cells)
    rows = [{"cells": n, **measure(n, args.dims, args.seed)} for n in sizes]
    metrics = [k for k in rows[0] if k != "cells"]
    logs = np.log([r["cells"] for r in rows])
    exponent, at_paper = {}, {}
    for metric in metrics:
        slope, intercept = np.polyfit(logs, np.log([max(r[metric], 1e-6) for r in rows]), 1) if len(rows) > 1 else (2.0, None)
        exponent[metric] = float(slope)
    for dataset, n in PAPER_CELLS.items():
        largest = rows[-1]
        at_paper[dataset] = {m: float(largest[m] * (n / largest["cells"]) ** max(exponent[m], 1.0)) for m in metrics}
        at_paper[dataset]["per_seed_total"] = float(sum(at_paper[dataset][m] for m in ("leiden_ari_nmi", "knn_transfer")))
        at_paper[dataset]["seed_free_total"] = float(sum(at_paper[dataset][m] for m in ("asw_label", "asw_batch", "ilisi")))
    return {
        "benchmark": "embedding",
        "environment": environment(resolve_device("cpu")),
        "dims": args.dims,
        "seconds": rows,
        "exponent": exponent,
        "at_paper_size": at_paper,
    }


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cells", type=int, nargs="+", default=[4000, 8000, 16000], help="cell counts to measure")
    parser.add_argument("--dims", type=int, default=DIMS)


def table(result: dict) -> str:
    metrics = list(result["exponent"])
    lines = [
        format_table(result["seconds"], ["cells", *metrics]),
        "",
        "fitted exponent: " + ", ".join(f"{m} {e:.2f}" for m, e in result["exponent"].items()),
    ]
    for dataset, values in result["at_paper_size"].items():
        lines.append(
            f"{dataset} ({PAPER_CELLS[dataset]:,} cells, extrapolated): {values['per_seed_total']:.0f} s per seed "
            f"(Leiden + kNN) + {values['seed_free_total']:.0f} s once (silhouettes, iLISI)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return benchmark_cli(
        "Time of the zero-shot embedding metrics against the number of cells.", _add_arguments, _run_from_args, table, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
