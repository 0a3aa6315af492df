"""The pretraining corpus and `celllm embed` at the paper's shape: memory, disk and batch preparation.

Synthetic corpora of the paper's shape (19,379 genes, a log-normal number of
detected genes around 1,500 per cell) are written as .h5ad files at two or more
sizes; each measurement runs in a fresh process (`run_isolated`) as a user's
would (default allocator, no MALLOC_ variables, torch's default threads), its
memory sampled while the work runs (`ResourceUse`: peak private and shared
memory, peak RSS, CPU and wall seconds):

- `tokenize`: `celllm.pretrain.store.build_token_store` (blocks of 8,192 cells):
  cells/s and peak RSS; the store's bytes per token on disk;
- `pretrain_memory`: a few pretraining steps (a small model) reading the store:
  the peak of the process's private memory (anonymous RSS, RssAnon) and, apart,
  of the store pages it maps (RssFile: page cache, shared by every rank on the node);
- `batch_preparation`: the seconds one rank spends making its views of a
  1,024-cell global batch (`BatchOrder` + `make_views` + padding its sub-batches),
  for 1 and 8 ranks, against the analytic H200 step of the paper model on 8 GPUs;
- `embed`: peak RSS of `celllm embed` on the whole file (a small model: memory,
  not compute, is under test);
- `verify`: the seconds `TokenStore.verify` takes to read the store whole before
  training, with its SHA-256s and without (`pretrain --skip-store-hashes`), the
  store's pages already cached (as right after tokenizing; a cold disk adds its read time).

Targets (reported in the JSON with `met`, not asserted):
peak private memory of pretraining at the largest size within 1.1x of the
smallest; at most 4 bytes per token on disk; batch preparation at most 10% of
the analytic 8-rank step (it also runs one step ahead, in a background thread);
`celllm embed` peak RSS at the largest size within 1.2x of the smallest.
`python -m benchmarks.perf.corpus --out results/perf/corpus.json` (`snakemake --cores 2 perf`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

from benchmarks.perf.common import (
    ResourceUse,
    benchmark_cli,
    environment,
    format_table,
    run_isolated,
    set_threads,
    synthetic_counts,
    target,
)
from benchmarks.perf.gpu import PEAK_BF16_TFLOPS, forward_flops_per_token, training_flops_per_token
from celllm.config import CellLMConfig
from celllm.model import EncoderConfig
from celllm.released import PAPER_N_GENES

PAPER_CELLS = 1_764_921  # PanglaoDB 1,126,580 + CancerSCEM 638,341
# What a rank holds per corpus cell besides the mapped store: the tissue code widened to int64 (Corpus),
# the cell lengths (int64) and their order (int64) of BatchOrder. The measured slope between two sizes is
# within run-to-run noise (a few %), so the paper-size estimate adds these bytes to the largest measurement.
PER_CELL_BYTES = 24
MEAN_DETECTED = 1_500
DEFAULT_SIZES = (20_000, 100_000)
GLOBAL_BATCH = 1_024
SUB_BATCH = 32
ASSUMED_MFU = 0.4  # of the H200's dense bf16 peak, for the analytic step
SMALL_MODEL = {"dim": 16, "depth": 1, "heads": 2, "dim_head": 8, "ff_mult": 2, "nb_features": 8}
TARGETS = {"private_memory_ratio": 1.1, "bytes_per_token": 4.0, "batch_preparation_share": 0.1, "embed_rss_ratio": 1.2}


def _genes(n_genes: int) -> list[str]:
    return [f"G{i}" for i in range(n_genes)]


def write_corpus(path: str, n_cells: int, n_genes: int = PAPER_N_GENES, seed: int = 0) -> dict:
    """A synthetic pretraining .h5ad of the paper's shape (half tumor, half normal)."""
    detected = min(MEAN_DETECTED, n_genes // 10)  # the paper's ~1,500, or a tenth of a smaller panel
    counts = synthetic_counts(n_cells, n_genes, 1 - detected / n_genes, seed)
    obs = pd.DataFrame({"tissue": np.where(np.arange(n_cells) % 2, "tumor", "normal")}, index=[f"c{i}" for i in range(n_cells)])
    ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=_genes(n_genes))).write_h5ad(path, compression="gzip")
    return {"n_cells": n_cells, "nonzero_per_cell": counts.nnz / n_cells, "h5ad_bytes": Path(path).stat().st_size}


# ---------------------------------------------------------------- measurements, each in a fresh process
def measure_tokenize(corpus: str, store: str, n_genes: int) -> dict:
    from celllm.pretrain.store import ARRAYS, build_token_store
    from celllm.tokens import TokenConfig, Vocabulary

    vocab, cfg = Vocabulary(_genes(n_genes)), TokenConfig()
    with ResourceUse() as use:
        build_token_store([corpus], store, vocab, cfg, progress=False)
    manifest = json.loads((Path(store) / "manifest.json").read_text())
    disk = sum((Path(store) / file).stat().st_size for file in ARRAYS.values())
    return {
        **use.record(),
        "cells_per_s": manifest["n_cells"] / use.wall_s,
        "n_tokens": manifest["n_tokens"],
        "store_bytes": disk,
        "bytes_per_token": disk / manifest["n_tokens"],
    }


def measure_pretrain_memory(store: str, out: str, steps: int = 4) -> dict:
    from celllm.pretrain.corpus import load_corpus
    from celllm.pretrain.trainer import pretrain

    cfg = CellLMConfig.from_dict(
        {"encoder": SMALL_MODEL, "pretrain": {"sub_batch_size": SUB_BATCH, "max_steps": steps, "warmup_steps": 1, "proj_dim": 8}}
    )
    with ResourceUse() as use:
        corpus = load_corpus([store], cfg.tokens)
        pretrain(corpus, out, cfg.with_pretrain(batch_size=min(256, len(corpus.cells) // 2)), device="cpu", progress=False)
    return {**use.record(), "steps": steps, "threads": torch.get_num_threads()}


def measure_batch_preparation(store: str, repeats: int = 8) -> dict:
    from celllm.pretrain.dnc import StepSetup, pad_sub_batches
    from celllm.pretrain.objectives import make_views
    from celllm.pretrain.store import TokenStore
    from celllm.pretrain.trainer import BatchOrder

    opened, p = TokenStore.open(store), CellLMConfig().pretrain
    setup = StepSetup(len(opened.vocab), opened.tokens, sub_batch_size=SUB_BATCH, sub_batch_tokens=p.sub_batch_tokens)
    lengths = opened.cells.lengths()
    result = {}
    for world in (1, 8):
        order = BatchOrder(lengths, GLOBAL_BATCH, p.seed, rank=0, world_size=world)
        seconds, tokens = [], []
        for step in range(repeats + 1):
            began = time.perf_counter()
            views = make_views(opened.cells, order.cells(step), opened.tissue, p.seed, step, p.view_keep, p.mask_ratio, opened.tokens)
            pad_sub_batches(views, setup)
            if step:  # the first call pages the store in
                seconds.append(time.perf_counter() - began)
                tokens.append(int(views.indptr[-1]) + 2 * views.n_cells)
        result[f"ranks_{world}"] = {
            "seconds_per_step": statistics.median(seconds),
            "cells": GLOBAL_BATCH // world,
            "view_tokens": statistics.median(tokens),
        }
    return result


def measure_verify(store: str) -> dict:
    from celllm.pretrain.store import TokenStore

    opened, result = TokenStore.open(store), {}
    for name, hashes in (("with_hashes", True), ("without_hashes", False)):
        began = time.perf_counter()
        opened.verify(hashes=hashes)
        seconds = time.perf_counter() - began
        result[name] = {"seconds": seconds, "gb_per_s": sum(p.stat().st_size for p in Path(store).iterdir()) / seconds / 1e9}
    return result


def measure_embed(corpus: str, checkpoint: str, out: str) -> dict:
    from celllm.embed import embed_file

    with ResourceUse() as use:
        embed_file(corpus, checkpoint, out, progress=False)
    return {**use.record(), "threads": torch.get_num_threads()}


def make_checkpoint(path: str, n_genes: int) -> None:
    """An untrained small model over the paper's gene count: what `measure_embed` embeds with."""
    from celllm.checkpoint import save_checkpoint
    from celllm.pretrain.model import CellLMForPretraining
    from celllm.tokens import Vocabulary

    cfg = CellLMConfig.from_dict({"encoder": SMALL_MODEL, "pretrain": {"proj_dim": 8}})
    torch.manual_seed(0)
    save_checkpoint(path, CellLMForPretraining(n_genes, cfg), Vocabulary(_genes(n_genes)), cfg)


# ---------------------------------------------------------------- the analytic step it is compared with
def analytic_step_seconds(tokens_per_rank: float) -> dict:
    """Seconds of one divide-and-conquer step of the paper model on an H200 at ASSUMED_MFU: training FLOPs plus the extra forward."""
    enc = EncoderConfig()
    flops_per_token = training_flops_per_token(enc) + sum(forward_flops_per_token(enc).values())
    peak = dict(PEAK_BF16_TFLOPS)["H200"] * 1e12
    return {
        "seconds": tokens_per_rank * flops_per_token / (ASSUMED_MFU * peak),
        "flops_per_token": flops_per_token,
        "assumed_mfu": ASSUMED_MFU,
        "peak_bf16_flops": peak,
    }


def run(sizes=DEFAULT_SIZES, n_genes: int = PAPER_N_GENES, threads: int | None = None, seed: int = 0) -> dict:
    set_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="celllm-corpus-") as tmp:
        tmp = Path(tmp)
        run_isolated("benchmarks.perf.corpus:make_checkpoint", {"path": str(tmp / "model"), "n_genes": n_genes})
        for n_cells in sizes:
            corpus, store = tmp / f"corpus_{n_cells}.h5ad", tmp / f"corpus_{n_cells}.tokens"
            row = {"n_cells": n_cells, **write_corpus(str(corpus), n_cells, n_genes, seed)}
            row["tokenize"] = run_isolated(
                "benchmarks.perf.corpus:measure_tokenize", {"corpus": str(corpus), "store": str(store), "n_genes": n_genes}
            )
            row["pretrain_memory"] = run_isolated(
                "benchmarks.perf.corpus:measure_pretrain_memory", {"store": str(store), "out": str(tmp / f"m{n_cells}")}
            )
            row["batch_preparation"] = run_isolated("benchmarks.perf.corpus:measure_batch_preparation", {"store": str(store)})
            row["verify"] = run_isolated("benchmarks.perf.corpus:measure_verify", {"store": str(store)})
            row["embed"] = run_isolated(
                "benchmarks.perf.corpus:measure_embed",
                {"corpus": str(corpus), "checkpoint": str(tmp / "model"), "out": str(tmp / f"e{n_cells}.h5ad")},
            )
            rows.append(row)
            for path in (corpus, tmp / f"e{n_cells}.h5ad"):
                path.unlink()
    small, large = rows[0], rows[-1]
    step = analytic_step_seconds(large["batch_preparation"]["ranks_8"]["view_tokens"])
    prep_8 = large["batch_preparation"]["ranks_8"]["seconds_per_step"]
    bytes_per_token = large["tokenize"]["bytes_per_token"]
    tokens_per_cell = large["tokenize"]["n_tokens"] / large["n_cells"]
    return {
        "benchmark": "corpus",
        "description": "token store, pretraining memory per rank, batch preparation and celllm embed at the paper's corpus shape",
        "settings": {
            "sizes": list(sizes),
            "n_genes": n_genes,
            "mean_detected_genes": MEAN_DETECTED,
            "global_batch": GLOBAL_BATCH,
            "sub_batch": SUB_BATCH,
            "small_model": SMALL_MODEL,
        },
        "environment": environment(torch.device("cpu")),
        "rows": rows,
        "analytic_8_rank_step": step,
        "paper_corpus_estimate": {
            "cells": PAPER_CELLS,
            "store_gb": PAPER_CELLS * (tokens_per_cell * bytes_per_token) / 1e9,
            "private_mb_per_rank": large["pretrain_memory"]["peak_private_mb"] + PER_CELL_BYTES * (PAPER_CELLS - large["n_cells"]) / 2**20,
            "verify_minutes": {
                name: PAPER_CELLS * tokens_per_cell * bytes_per_token / 1e9 / large["verify"][name]["gb_per_s"] / 60
                for name in ("with_hashes", "without_hashes")
            },
            "note": "store pages are shared by every rank of a node (page cache); private memory is each rank's own, with the small model",
        },
        "targets": {
            "private_memory": target(
                "per-rank peak private memory, largest / smallest corpus",
                large["pretrain_memory"]["peak_private_mb"] / small["pretrain_memory"]["peak_private_mb"],
                TARGETS["private_memory_ratio"],
            ),
            "bytes_per_token": target("token store bytes per token on disk", bytes_per_token, TARGETS["bytes_per_token"]),
            "batch_preparation": target(
                "batch preparation per step per rank (8 ranks) / analytic H200 8-rank step",
                prep_8 / step["seconds"],
                TARGETS["batch_preparation_share"],
            ),
            "embed_rss": target(
                "celllm embed peak RSS, largest / smallest input",
                large["embed"]["peak_rss_mb"] / small["embed"]["peak_rss_mb"],
                TARGETS["embed_rss_ratio"],
            ),
        },
    }


def table(result: dict) -> str:
    rows = [
        {
            "cells": r["n_cells"],
            "tokenize_cells_s": r["tokenize"]["cells_per_s"],
            "tokenize_peak_mb": r["tokenize"]["peak_rss_mb"],
            "bytes_per_token": r["tokenize"]["bytes_per_token"],
            "private_mb": r["pretrain_memory"]["peak_private_mb"],
            "store_pages_mb": r["pretrain_memory"]["peak_shared_mb"],
            "prep_1_rank_s": r["batch_preparation"]["ranks_1"]["seconds_per_step"],
            "prep_8_ranks_s": r["batch_preparation"]["ranks_8"]["seconds_per_step"],
            "embed_peak_mb": r["embed"]["peak_rss_mb"],
            "embed_cpu_s": r["embed"]["cpu_s"],
            "verify_s": r["verify"]["with_hashes"]["seconds"],
            "verify_unhashed_s": r["verify"]["without_hashes"]["seconds"],
        }
        for r in result["rows"]
    ]
    estimate = result["paper_corpus_estimate"]
    return (
        format_table(rows, list(rows[0])) + f"\nanalytic H200 8-rank step: {result['analytic_8_rank_step']['seconds']:.3f} s"
        f"\npaper corpus ({estimate['cells']:,} cells): store {estimate['store_gb']:.1f} GB shared per node, "
        f"{estimate['private_mb_per_rank']:.0f} MB private per rank (small model); verified before training in "
        f"{estimate['verify_minutes']['with_hashes']:.1f} min ({estimate['verify_minutes']['without_hashes']:.1f} min without hashes)"
    )


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="corpus sizes in cells, at least two (memory per cell is the slope between the smallest and the largest)",
    )
    parser.add_argument("--n-genes", type=int, default=PAPER_N_GENES)


def _run_from_args(args: argparse.Namespace) -> dict:
    if len(set(args.sizes)) < 2:
        raise SystemExit(
            "benchmarks.perf.corpus: error: --sizes needs at least two different sizes (the paper-size estimate is "
            "extrapolated from the slope between them)"
        )
    return run(tuple(args.sizes), args.n_genes, args.threads, args.seed)


def main(argv: list[str] | None = None) -> int:
    return benchmark_cli(
        "Token store, per-rank memory, batch preparation and streaming embed at the paper's corpus shape.",
        _add_arguments,
        _run_from_args,
        table,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
