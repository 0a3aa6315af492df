"""Divide-and-conquer versus full-batch pretraining steps: peak memory and time against batch size.

For each batch size (cells; each cell gives two views, so a batch is twice as
many sequences) two ways to take one optimizer step are measured:
- `full`: `celllm.pretrain.dnc.full_batch_step`, one forward and backward over
  the whole batch; activation memory grows with the batch;
- `dnc`: `celllm.pretrain.dnc.divide_and_conquer_step` with a fixed sub-batch
  (gradient caching); memory should stay that of one sub-batch, at the price of
  a second forward pass.
A step is what the trainer does: zero the gradients, the step function (which
pads the views into tensors), AdamW. Cells are sorted by length within the
batch, as the trainer does, so sub-batches need little padding.

Each (method, batch size) is measured in two fresh processes (see
`common.run_isolated`), one for time and one for memory; each builds the
model, AdamW with its gradients and optimizer state already allocated, and the
batch's views before measuring anything.
- `seconds_per_step`: median over the timed steps, after warm-up steps.
- `peak_mb`: peak growth of the resident set (CUDA: of allocated tensor
  memory) during one step, over the baseline taken after a first step on two
  cells (so one-time costs such as library code paged in are not counted).
  It is the memory a step needs on top of the model, its training state and
  the data: activations, the padded batch, the loss's similarity matrix,
  temporaries. The memory process runs as a user's would (default allocator:
  its cache of freed blocks counts, as it does in a user's process).
- `real_tokens`: tokens of the batch's views ([CLS] included); `padded_tokens`:
  positions one forward pass over every view processes, padding included
  (DnC runs them twice); `largest_pass_tokens`: positions of the largest single
  forward pass, the quantity DnC's activation memory follows. With a fixed
  number of cells per sub-batch, the sub-batch of a large batch's longest
  cells is longer than a typical small batch, so DnC memory still creeps up
  with batch size along the tail of the cell-length distribution
  (`largest_pass_token_ratio` in the memory target).

Targets (reported, not asserted):
- `dnc_memory_flat`: DnC peak at the largest batch / DnC peak at batch =
  sub-batch size, at most 1.3;
- `dnc_time_overhead`: DnC seconds per step / full-batch seconds per step, at
  most 1.3, taking the worst batch size where the full step fits.

CPU defaults use the demo profile's model and a gene panel scaled down with
the same sparsity as real data, so the whole sweep takes about 1.5 minutes on
2 idle cores: `python -m benchmarks.perf.dnc --out results/perf/dnc.json`.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.perf.common import (
    CPU_ENCODER,
    MB,
    PeakMemory,
    autocast_dtype,
    benchmark_cli,
    count_parameters,
    encoder_config,
    environment,
    format_table,
    given,
    length_summary,
    resolve_device,
    run_isolated,
    set_threads,
    synthetic_cells,
    target,
    time_steps,
)
from celllm.config import CellLMConfig, PretrainConfig
from celllm.model import EncoderConfig
from celllm.pretrain.dnc import StepSetup, divide_and_conquer_step, full_batch_step, plan_sub_batches
from celllm.pretrain.model import CellLMForPretraining
from celllm.pretrain.objectives import ViewBatch, make_views
from celllm.pretrain.trainer import by_length
from celllm.tokens import TokenConfig

DEFAULT_ENCODER = CPU_ENCODER
DEFAULT_BATCH_SIZES = (16, 32, 64, 128, 256)
DEFAULT_SUB_BATCH_SIZE = 16
# Padded-token cap of a DnC forward pass: about what 16 cells of this data need,
# so that the pass holding the longest cells is no larger than a typical one.
DEFAULT_SUB_BATCH_TOKENS = 4096
DEFAULT_N_GENES = 1000
DEFAULT_ZERO_FRACTION = 0.9
MEMORY_TARGET = 1.3
TIME_TARGET = 1.3
METHODS = ("full", "dnc")


def _allocate_training_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Create gradient buffers and AdamW state now (a zero-learning-rate step), so they count as baseline."""
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    learning_rates = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    optimizer.step()
    for group, lr in zip(optimizer.param_groups, learning_rates):
        group["lr"] = lr


def _forward_pass_tokens(views: ViewBatch, plan: list[tuple[int, int]]) -> list[int]:
    """Tokens (real + padding, [CLS] included) of each forward pass of a step (one pass for the full step)."""
    lengths = views.cell_lengths()
    return [int(2 * (b - a) * lengths[a:b].max()) for a, b in plan]


def measure_step(
    measure: str,
    method: str,
    batch_size: int,
    sub_batch_size: int,
    sub_batch_tokens: int,
    encoder: dict,
    n_genes: int,
    zero_fraction: float,
    warmup: int,
    repeats: int,
    device: str,
    threads: int,
    seed: int,
) -> dict:
    """One (method, batch size) configuration: seconds per step, or peak memory of one step.

    measure="time": `warmup` untimed steps, then the median of `repeats` timed ones.
    measure="memory": one step on two cells (so one-time costs fall into the
    baseline), then the peak memory growth of one full step. Meant to run alone
    in a fresh process (`run_isolated`). Returns a JSON-able row; on CUDA an out-of-memory step gives a row
    with `error` set instead.
    """
    if method not in METHODS or measure not in ("time", "memory"):
        raise ValueError(f"method must be one of {METHODS} and measure 'time' or 'memory', got {method!r}, {measure!r}")
    set_threads(threads)
    device = resolve_device(device)
    cfg = CellLMConfig(
        encoder=EncoderConfig.from_dict(encoder),
        tokens=TokenConfig(),
        pretrain=PretrainConfig(batch_size=max(2, batch_size), sub_batch_size=sub_batch_size, sub_batch_tokens=sub_batch_tokens),
    )
    p = cfg.pretrain
    cells, vocab = synthetic_cells(batch_size, n_genes, zero_fraction, cfg.tokens, seed)
    order = by_length(np.arange(batch_size), cells.lengths())
    tissue = np.arange(batch_size) % 2  # half tumor, half normal
    views = make_views(cells, order, tissue, seed, 0, p.view_keep, p.mask_ratio, cfg.tokens)

    torch.manual_seed(seed)
    model = CellLMForPretraining(len(vocab), cfg).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    _allocate_training_state(model, optimizer)
    setup = StepSetup.from_config(cfg, len(vocab), device, autocast_dtype(device))
    losses = {}

    def step(batch: ViewBatch) -> None:
        optimizer.zero_grad(set_to_none=False)  # keep the buffers counted in the baseline
        if method == "full":
            losses.update(full_batch_step(model, batch, setup))
        else:
            losses.update(divide_and_conquer_step(model, batch, setup))
        optimizer.step()

    row = {"method": method, "batch_size": batch_size, "sub_batch_size": sub_batch_size if method == "dnc" else None}
    try:
        if measure == "time":
            plan = plan_sub_batches(views, sub_batch_size, sub_batch_tokens) if method == "dnc" else [(0, views.n_cells)]
            passes = _forward_pass_tokens(views, plan)
            timing = time_steps(lambda _: step(views), warmup, repeats, device)
            return {
                **row,
                "seconds_per_step": timing["median_s"],
                "seconds_all": timing["seconds"],
                "cells_per_s": batch_size / timing["median_s"],
                "real_tokens": int(views.indptr[-1] + 2 * views.n_cells),
                "padded_tokens": sum(passes),
                "largest_pass_tokens": max(passes),
                "loss": losses["loss"],
                "n_parameters": count_parameters(model),
                "nonzero_genes_per_cell": length_summary(cells.lengths()),
            }
        step(views.cells(np.arange(min(2, batch_size))))
        with PeakMemory(device) as memory:
            step(views)
    except torch.cuda.OutOfMemoryError:
        return {**row, "error": "out of memory"}
    return {**row, "peak_mb": memory.growth_bytes / MB, "peak_absolute_mb": memory.peak_bytes / MB, "memory_method": memory.method}


def _measure(measure: str, kwargs: dict, isolate: bool) -> dict:
    if not isolate:
        return measure_step(measure, **kwargs)
    return run_isolated("benchmarks.perf.dnc:measure_step", {"measure": measure, **kwargs})


def _row(runs: list[dict], method: str, batch_size: int) -> dict | None:
    return next((r for r in runs if r["method"] == method and r["batch_size"] == batch_size and "error" not in r), None)


def compare(runs: list[dict], sub_batch_size: int) -> tuple[list[dict], dict]:
    """Per-batch ratios (DnC/full time, full/DnC memory) and the two targets."""
    batch_sizes = sorted({r["batch_size"] for r in runs})
    comparisons = []
    for b in batch_sizes:
        full, dnc = _row(runs, "full", b), _row(runs, "dnc", b)
        comparisons.append(
            {
                "batch_size": b,
                "full_fits": full is not None,
                "dnc_largest_pass_tokens": dnc["largest_pass_tokens"] if dnc else None,
                "time_dnc_over_full": dnc["seconds_per_step"] / full["seconds_per_step"] if full and dnc else None,
                "memory_full_over_dnc": full["peak_mb"] / dnc["peak_mb"] if full and dnc and dnc["peak_mb"] > 0 else None,
            }
        )
    reference_batch = sub_batch_size if sub_batch_size in batch_sizes else batch_sizes[0]
    reference, largest = _row(runs, "dnc", reference_batch), _row(runs, "dnc", batch_sizes[-1])
    memory_ratio = largest["peak_mb"] / reference["peak_mb"] if reference and largest and reference["peak_mb"] > 0 else None
    time_ratios = [c["time_dnc_over_full"] for c in comparisons if c["time_dnc_over_full"] is not None]
    targets = {
        "dnc_memory_flat": target(
            f"DnC peak memory at batch {batch_sizes[-1]} / at batch {reference_batch} (sub-batch {sub_batch_size})",
            memory_ratio,
            MEMORY_TARGET,
        ),
        "dnc_time_overhead": target(
            "DnC / full-batch seconds per step, worst batch size where the full step fits",
            max(time_ratios) if time_ratios else None,
            TIME_TARGET,
        ),
    }
    if reference and largest:
        # DnC memory follows its largest forward pass: the sub-batch of the batch's longest cells
        targets["dnc_memory_flat"]["largest_pass_token_ratio"] = largest["largest_pass_tokens"] / reference["largest_pass_tokens"]
    return comparisons, targets


def run(
    batch_sizes=DEFAULT_BATCH_SIZES,
    sub_batch_size: int = DEFAULT_SUB_BATCH_SIZE,
    encoder: dict | EncoderConfig | None = None,
    n_genes: int = DEFAULT_N_GENES,
    zero_fraction: float = DEFAULT_ZERO_FRACTION,
    warmup: int = 1,
    repeats: int = 3,
    device: str | None = None,
    threads: int | None = None,
    seed: int = 0,
    isolate: bool = True,
    sub_batch_tokens: int = DEFAULT_SUB_BATCH_TOKENS,
) -> dict:
    """Sweep batch sizes x {full, dnc}; returns the dnc.json record.

    `isolate=False` measures in this process (fast, for tests): allocator
    caches left by earlier configurations can then hide part of a later peak.
    """
    device = resolve_device(device)
    threads = set_threads(threads)
    enc = encoder_config(encoder, DEFAULT_ENCODER)
    batch_sizes = sorted(int(b) for b in batch_sizes)
    runs = []
    for batch_size in batch_sizes:
        for method in METHODS:
            kwargs = dict(
                method=method,
                batch_size=batch_size,
                sub_batch_size=sub_batch_size,
                sub_batch_tokens=sub_batch_tokens,
                encoder=enc.to_dict(),
                n_genes=n_genes,
                zero_fraction=zero_fraction,
                warmup=warmup,
                repeats=repeats,
                device=str(device),
                threads=threads,
                seed=seed,
            )
            memory = _measure("memory", kwargs, isolate)
            runs.append(memory if "error" in memory else {**_measure("time", kwargs, isolate), **memory})
    comparisons, targets = compare(runs, sub_batch_size)
    measured = next((r for r in reversed(runs) if "error" not in r), {})  # the largest batch that ran
    pretrain = PretrainConfig()
    return {
        "benchmark": "dnc",
        "description": "Seconds per optimizer step (median) and peak memory growth above model + training state, full-batch vs divide-and-conquer step",
        "environment": environment(device),
        "model": {"encoder": enc.to_dict(), "n_parameters": measured.get("n_parameters"), "proj_dim": pretrain.proj_dim},
        "data": {
            "n_genes": n_genes,
            "zero_fraction": zero_fraction,
            "nonzero_genes_per_cell": measured.get("nonzero_genes_per_cell"),
            "views_per_cell": 2,
            "view_keep": pretrain.view_keep,
            "mask_ratio": pretrain.mask_ratio,
        },
        "settings": {
            "batch_sizes": batch_sizes,
            "sub_batch_size": sub_batch_size,
            "sub_batch_tokens": sub_batch_tokens,
            "warmup_steps": warmup,
            "timed_steps": repeats,
            "autocast": str(autocast_dtype(device) or "none (float32)"),
            "isolated_processes": isolate,
            "memory_method": measured.get("memory_method"),
            "seed": seed,
        },
        "runs": runs,
        "comparisons": comparisons,
        "targets": targets,
    }


def table(result: dict) -> str:
    run_columns = [
        "method",
        "batch_size",
        "sub_batch_size",
        "seconds_per_step",
        "cells_per_s",
        "peak_mb",
        "real_tokens",
        "padded_tokens",
        "largest_pass_tokens",
        "error",
    ]
    runs = format_table(result["runs"], run_columns)
    ratios = format_table(
        result["comparisons"], ["batch_size", "full_fits", "time_dnc_over_full", "memory_full_over_dnc", "dnc_largest_pass_tokens"]
    )
    env = result["environment"]
    return f"device {env['device']}, torch {env['torch']}, {env['torch_threads']} threads\n{runs}\n\n{ratios}"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(DEFAULT_BATCH_SIZES), help="cells per optimizer step")
    parser.add_argument("--sub-batch-size", type=int, default=DEFAULT_SUB_BATCH_SIZE, help="cells per DnC forward pass")
    parser.add_argument(
        "--sub-batch-tokens", type=int, default=DEFAULT_SUB_BATCH_TOKENS, help="padded-token cap of a DnC forward pass (0: none)"
    )
    parser.add_argument("--n-genes", type=int, default=DEFAULT_N_GENES)
    parser.add_argument("--zero-fraction", type=float, default=DEFAULT_ZERO_FRACTION)
    parser.add_argument("--in-process", action="store_true", help="measure in this process instead of one fresh process per configuration")


def _run_from_args(args: argparse.Namespace) -> dict:
    return run(
        args.batch_sizes,
        args.sub_batch_size,
        args.encoder,
        args.n_genes,
        args.zero_fraction,
        device=args.device,
        seed=args.seed,
        isolate=not args.in_process,
        sub_batch_tokens=args.sub_batch_tokens,
        **given(args, "warmup", "repeats"),
    )


def main(argv: list[str] | None = None) -> int:
    return benchmark_cli(
        "Divide-and-conquer vs full-batch step: memory and time against batch size.", _add_arguments, _run_from_args, table, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
