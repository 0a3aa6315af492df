"""Encoder training throughput by input representation: non-zero genes versus every gene.

The same cells go through the same encoder (forward + backward of
`CellLMEncoder`, no optimizer step) in three representations:
- `nonzero_dynamic` (CellLM, this library): [CLS] + the cell's non-zero genes,
  each batch padded only to its own longest cell (`celllm.tokens.pad_batch`);
  batches are consecutive cells in random order, not sorted by length;
- `nonzero_fixed` (the released code): the same tokens, every batch padded to a
  fixed length (6000 tokens for 19,379 genes in the released code);
- `dense` (scBERT style): [CLS] + every gene of the panel, zeros included (as
  bin 0), so every cell is n_genes + 1 tokens.

Numbers: `seconds_per_batch` is the median over timed batches (each a
different batch of cells) after warm-up batches; `cells_per_s` = batch size /
that median; `tokens_per_cell` is the mean number of positions the encoder
processed per cell, padding included. On CPU the whole setup is scaled down:
the gene panel and the fixed length shrink together (fixed length / genes =
6000 / 19,379, as released), at the sparsity of real data (~90% zeros).

Target (reported, not asserted): `nonzero_dynamic` cells/s at least 5x `dense`.
`python -m benchmarks.perf.tokens --out results/perf/tokens.json`.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.perf.common import (
    CPU_ENCODER,
    autocast,
    autocast_dtype,
    benchmark_cli,
    count_parameters,
    encoder_config,
    environment,
    format_table,
    given,
    length_summary,
    resolve_device,
    set_threads,
    synthetic_cells,
    target,
    time_steps,
)
from celllm.model import CellLMEncoder, EncoderConfig
from celllm.released import PAPER_N_GENES, RELEASED_MAX_LEN
from celllm.tokens import TokenConfig, TokenizedCells, cls_gene_id, pad_batch, pad_gene_id

DEFAULT_N_GENES = 4000
DEFAULT_ZERO_FRACTION = 0.9
DEFAULT_BATCH_SIZE = 16
SPEEDUP_TARGET = 5.0
MODES = {
    "nonzero_dynamic": "non-zero genes, padded to the batch's longest cell (CellLM)",
    "nonzero_fixed": "non-zero genes, padded to a fixed length (released code)",
    "dense": "every gene, zeros included (scBERT style)",
}


def scaled_max_len(n_genes: int) -> int:
    """The released fixed length scaled to a smaller gene panel: 6000 tokens per 19,379 genes."""
    return max(2, round(n_genes * RELEASED_MAX_LEN / PAPER_N_GENES))


def _pad_to(batch: dict[str, torch.Tensor], length: int, vocab_size: int, cfg: TokenConfig) -> dict[str, torch.Tensor]:
    """Extend a padded batch with PAD tokens up to `length` positions."""
    extra = length - batch["gene_ids"].shape[1]
    pad = torch.nn.functional.pad
    return {
        "gene_ids": pad(batch["gene_ids"], (0, extra), value=pad_gene_id(vocab_size)),
        "bins": pad(batch["bins"], (0, extra), value=cfg.pad_bin),
        "mask": pad(batch["mask"], (0, extra), value=False),
    }


def dense_batch(sequences: list[tuple[np.ndarray, np.ndarray]], n_genes: int, cfg: TokenConfig) -> dict[str, torch.Tensor]:
    """[CLS] + every gene of the panel per cell; genes the cell does not express get bin 0."""
    n = len(sequences)
    bins = np.zeros((n, n_genes + 1), dtype=np.int64)
    bins[:, 0] = cfg.cls_bin
    for row, (genes, values) in enumerate(sequences):
        bins[row, 1 + genes] = values
    gene_ids = np.tile(np.concatenate([[cls_gene_id(n_genes)], np.arange(n_genes)]), (n, 1))
    return {"gene_ids": torch.from_numpy(gene_ids), "bins": torch.from_numpy(bins), "mask": torch.ones((n, n_genes + 1), dtype=torch.bool)}


def make_batches(cells: TokenizedCells, n_genes: int, cfg: TokenConfig, mode: str, batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Consecutive cells in batches of `batch_size`, as `mode` tokenizes them."""
    batches = []
    for start in range(0, len(cells) - batch_size + 1, batch_size):
        sequences = [cells.cell(i) for i in range(start, start + batch_size)]
        if mode == "dense":
            batches.append(dense_batch(sequences, n_genes, cfg))
        elif mode == "nonzero_fixed":
            batches.append(_pad_to(pad_batch(sequences, n_genes, cfg), cfg.max_len, n_genes, cfg))
        elif mode == "nonzero_dynamic":
            batches.append(pad_batch(sequences, n_genes, cfg))
        else:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return batches


def _train_pass(model: CellLMEncoder, batch: dict[str, torch.Tensor], device: torch.device) -> None:
    """Forward + backward of the encoder with a loss over every real token's state."""
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    model.zero_grad(set_to_none=False)
    with autocast(device):
        hidden = model(batch["gene_ids"], batch["bins"], batch["mask"])
    mask = batch["mask"].to(torch.float32)
    loss = (hidden.float().pow(2).mean(-1) * mask).sum() / mask.sum()
    loss.backward()


def run(
    n_genes: int = DEFAULT_N_GENES,
    zero_fraction: float = DEFAULT_ZERO_FRACTION,
    max_len: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    encoder: dict | EncoderConfig | None = None,
    warmup: int = 1,
    repeats: int = 5,
    device: str | None = None,
    threads: int | None = None,
    seed: int = 0,
) -> dict:
    """Cells/s of one encoder training pass for each representation; returns the tokens.json record.

    `max_len` (tokens per cell with [CLS], for `nonzero_fixed` and the cut of
    long cells) defaults to the released 6000 scaled to `n_genes`.
    """
    device = resolve_device(device)
    set_threads(threads)
    enc = encoder_config(encoder, CPU_ENCODER)
    cfg = TokenConfig(max_len=max_len or scaled_max_len(n_genes))
    n_batches = warmup + repeats
    cells, vocab = synthetic_cells(batch_size * n_batches, n_genes, zero_fraction, cfg, seed)
    torch.manual_seed(seed)
    model = CellLMEncoder(len(vocab), cfg.n_bin_tokens, enc).to(device).train()

    modes = []
    for mode, description in MODES.items():
        batches = make_batches(cells, n_genes, cfg, mode, batch_size)
        timing = time_steps(lambda i: _train_pass(model, batches[i], device), warmup, repeats, device)
        positions = np.mean([b["mask"].numel() for b in batches[warmup:]]) / batch_size
        modes.append(
            {
                "mode": mode,
                "description": description,
                "tokens_per_cell": float(positions),
                "seconds_per_batch": timing["median_s"],
                "seconds_all": timing["seconds"],
                "cells_per_s": batch_size / timing["median_s"],
                "tokens_per_s": batch_size * positions / timing["median_s"],
            }
        )
    speed = {m["mode"]: m["cells_per_s"] for m in modes}
    length = {m["mode"]: m["tokens_per_cell"] for m in modes}
    lengths = cells.lengths()
    return {
        "benchmark": "tokens",
        "description": "Cells/s of one encoder forward + backward, by input representation (non-zero genes vs every gene)",
        "environment": environment(device),
        "model": {"encoder": enc.to_dict(), "n_parameters": count_parameters(model)},
        "data": {
            "n_genes": n_genes,
            "zero_fraction": zero_fraction,
            "observed_zero_fraction": float(1 - lengths.mean() / n_genes),
            "nonzero_genes_per_cell": length_summary(lengths),
            "max_len": cfg.max_len,
            "cells_at_max_len": int((lengths >= cfg.max_len - 1).sum()),
            "paper_scale": {"n_genes": PAPER_N_GENES, "max_len": RELEASED_MAX_LEN},
        },
        "settings": {
            "batch_size": batch_size,
            "warmup_batches": warmup,
            "timed_batches": repeats,
            "seed": seed,
            "autocast": str(autocast_dtype(device) or "none (float32)"),
        },
        "modes": modes,
        "ratios": {
            "cells_per_s_nonzero_dynamic_over_dense": speed["nonzero_dynamic"] / speed["dense"],
            "cells_per_s_nonzero_dynamic_over_nonzero_fixed": speed["nonzero_dynamic"] / speed["nonzero_fixed"],
            "cells_per_s_nonzero_fixed_over_dense": speed["nonzero_fixed"] / speed["dense"],
            "tokens_per_cell_dense_over_nonzero_dynamic": length["dense"] / length["nonzero_dynamic"],
        },
        "targets": {
            "nonzero_vs_dense": target(
                "cells/s with non-zero genes and dynamic padding / with every gene (scBERT style)",
                speed["nonzero_dynamic"] / speed["dense"],
                SPEEDUP_TARGET,
                at_least=True,
            ),
        },
    }


def table(result: dict) -> str:
    data, env = result["data"], result["environment"]
    head = (
        f"device {env['device']}, torch {env['torch']}, {env['torch_threads']} threads; {data['n_genes']} genes, "
        f"{data['observed_zero_fraction']:.0%} zeros, {data['nonzero_genes_per_cell']['mean']:.0f} non-zero genes per cell, "
        f"fixed length {data['max_len']}"
    )
    modes = format_table(result["modes"], ["mode", "tokens_per_cell", "seconds_per_batch", "cells_per_s", "tokens_per_s"])
    ratios = "\n".join(f"{name}: {value:.3g}" for name, value in result["ratios"].items())
    return f"{head}\n{modes}\n{ratios}"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-genes", type=int, default=DEFAULT_N_GENES, help="gene panel size (the paper: 19379)")
    parser.add_argument("--zero-fraction", type=float, default=DEFAULT_ZERO_FRACTION)
    parser.add_argument("--max-len", type=int, help="fixed length incl. [CLS] (default: 6000 scaled to the panel)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="cells per batch")


def _run_from_args(args: argparse.Namespace) -> dict:
    return run(
        args.n_genes,
        args.zero_fraction,
        args.max_len,
        args.batch_size,
        args.encoder,
        device=args.device,
        seed=args.seed,
        **given(args, "warmup", "repeats"),
    )


def main(argv: list[str] | None = None) -> int:
    return benchmark_cli(
        "Encoder throughput: non-zero genes (dynamic / fixed padding) vs every gene.", _add_arguments, _run_from_args, table, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
