"""The paper-size model's bf16 training step on a GPU: cells/s and model FLOP utilisation.

The model is the paper's (`EncoderConfig()` defaults: dim 512, depth 10, 16
heads of 64, FFN 2048, 266 random features; 19,379 genes) with its three
pretraining heads. A step is `celllm.pretrain.dnc.full_batch_step` with bf16
autocast (`torch.autocast('cuda', dtype=torch.bfloat16)` around the forward
pass, as the trainer does) plus AdamW. Each step gets a fresh sub-batch as the
trainer makes them: a random global batch sorted by length (`by_length`),
whose middle `batch_size` cells are taken, so padding is small and lengths
typical. Cells are synthetic at realistic sparsity (~90% zeros, i.e. ~1,900
non-zero genes per cell; each view keeps 80% of them).

Numbers:
- `cells_per_s`: cells (each two views) per second, over all timed steps;
- `model_flops_per_s`: analytic model FLOPs of the timed steps (`training_flops`
  on the real, non-padding tokens) / their wall time;
- `mfu`: model_flops_per_s / the GPU's dense bf16 peak (`PEAK_BF16_TFLOPS`,
  or --peak-tflops); `mfu_with_padding` counts padded positions too (the
  work the GPU actually did).

FLOP count (`forward_flops_per_token`): matrix products only, per token and
layer, with d = dim, h = heads, e = dim_head, m = random features,
f = ff_mult * d:
  QKV projection 2*d*3he + output projection 2*he*d + FFN 4*d*f
  + FAVOR+ feature maps of q and k: h * 2 * (2*e*m)
  + linear attention: h * (2*m*e for K'^T V + 2*m*e for Q'(K'^T V) + 2*m for the normaliser),
times depth. Embeddings, heads, norms, the exp of the feature maps and other
element-wise work are not counted. Training = 3x forward (backward does two
products per product), except the feature maps: their random projection gets
no gradient, so their backward is 1x. This equals what
`torch.utils.flop_counter.FlopCounterMode` counts for the encoder (tested).
For the paper model: 105.8 MFLOP per token forward, 306.4 MFLOP per token per
training step.

Target (reported, not asserted): mfu >= 0.40. On a machine without CUDA,
`run` returns {"available": false, ...} with the FLOP model only.
`python -m benchmarks.perf.gpu --out results/perf/gpu.json`.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.perf.common import (
    MB,
    PeakMemory,
    benchmark_cli,
    count_parameters,
    encoder_config,
    environment,
    format_table,
    given,
    length_summary,
    set_threads,
    synthetic_cells,
    target,
    time_steps,
)
from celllm.config import CellLMConfig, PretrainConfig
from celllm.model import EncoderConfig
from celllm.pretrain.dnc import StepSetup, full_batch_step
from celllm.pretrain.model import CellLMForPretraining
from celllm.pretrain.objectives import make_views
from celllm.pretrain.trainer import by_length
from celllm.released import PAPER_N_GENES
from celllm.tokens import TokenConfig

DEFAULT_ZERO_FRACTION = 0.9
DEFAULT_BATCH_SIZE = 16  # cells per step (32 sequences of ~1,550 tokens)
MFU_TARGET = 0.40
# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data
# sheets, matched in order against torch.cuda.get_device_name(): put the more
# specific names first. Override with --peak-tflops for anything else.
PEAK_BF16_TFLOPS = (
    ("GH200", 989.4),
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM
    ("H800", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.1),
    ("A10", 125.0),
)


# ---------------------------------------------------------------- FLOP model
def forward_flops_per_token(cfg: EncoderConfig) -> dict[str, float]:
    """Forward FLOPs per token of the whole encoder, by part (matrix products only; see module docstring)."""
    d, h, e, m, f = cfg.dim, cfg.heads, cfg.dim_head, cfg.nb_features, cfg.ff_mult * cfg.dim
    per_layer = {
        "qkv_projection": 2 * d * 3 * h * e,
        "output_projection": 2 * h * e * d,
        "feed_forward": 2 * d * f + 2 * f * d,
        "feature_maps": h * 2 * (2 * e * m),
        "linear_attention": h * (2 * m * e + 2 * m * e + 2 * m),
    }
    return {part: float(cfg.depth * flops) for part, flops in per_layer.items()}


def training_flops_per_token(cfg: EncoderConfig) -> float:
    """Forward + backward FLOPs per token: 3x forward, but 2x for the feature maps (no gradient for the random projection)."""
    parts = forward_flops_per_token(cfg)
    return 3 * sum(parts.values()) - parts["feature_maps"]


def training_flops(cfg: EncoderConfig, n_tokens: int) -> float:
    """Model FLOPs of one training step over `n_tokens` tokens."""
    return training_flops_per_token(cfg) * n_tokens


def flop_model(cfg: EncoderConfig) -> dict:
    forward = forward_flops_per_token(cfg)
    return {
        "forward_flops_per_token": sum(forward.values()),
        "forward_flops_per_token_by_part": forward,
        "training_flops_per_token": training_flops_per_token(cfg),
        "formula": "matrix products only; training = 3x forward except feature maps 2x; embeddings, heads and element-wise ops excluded",
    }


def peak_bf16_flops(device_name: str, override_tflops: float | None = None) -> tuple[float | None, str]:
    """Dense bf16 peak FLOP/s of a GPU by name, and where the number came from (None if unknown)."""
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    for fragment, tflops in PEAK_BF16_TFLOPS:
        if fragment.lower() in device_name.lower():
            return tflops * 1e12, f"table entry {fragment!r}"
    return None, "unknown GPU: pass --peak-tflops"


# ---------------------------------------------------------------- measurement
def _typical_sub_batch(lengths: np.ndarray, rng: np.random.Generator, global_batch: int, batch_size: int) -> np.ndarray:
    """The middle `batch_size` cells of a length-sorted random global batch, like the trainer's sub-batches."""
    indices = by_length(rng.choice(len(lengths), global_batch, replace=False), lengths)
    start = (global_batch - batch_size) // 2
    return indices[start : start + batch_size]


def measure(
    device: torch.device,
    enc: EncoderConfig,
    batch_size: int,
    n_genes: int,
    zero_fraction: float,
    warmup: int,
    repeats: int,
    peak_flops: float | None,
    seed: int = 0,
) -> dict:
    """Time bf16 training steps of `enc` on `device` and turn them into cells/s and FLOP rates.

    Works on any device (bf16 autocast exists on CPU too, which the tests use);
    `run` calls it on CUDA with the paper model. `peak_flops` None leaves the
    utilisation fields None.
    """
    pretrain = PretrainConfig(batch_size=max(2 * batch_size, PretrainConfig().batch_size), sub_batch_size=batch_size)
    cfg = CellLMConfig(encoder=enc, tokens=TokenConfig(), pretrain=pretrain)
    cells, vocab = synthetic_cells(2 * pretrain.batch_size, n_genes, zero_fraction, cfg.tokens, seed)
    lengths = cells.lengths()
    rng = np.random.default_rng(seed)
    tissue = np.arange(len(cells)) % 2
    steps = [
        make_views(
            cells,
            _typical_sub_batch(lengths, rng, pretrain.batch_size, batch_size),
            tissue,
            seed,
            i,
            pretrain.view_keep,
            pretrain.mask_ratio,
            cfg.tokens,
        )
        for i in range(warmup + repeats)
    ]
    torch.manual_seed(seed)
    model = CellLMForPretraining(len(vocab), cfg).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=pretrain.lr, weight_decay=pretrain.weight_decay)
    setup = StepSetup.from_config(cfg, len(vocab), device, amp_dtype=torch.bfloat16)

    def step(i: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        full_batch_step(model, steps[i], setup)
        optimizer.step()

    with PeakMemory(device) as memory:
        timing = time_steps(step, warmup, repeats, device)
    timed = steps[warmup:]
    real_tokens = sum(int(views.indptr[-1]) + 2 * views.n_cells for views in timed)
    padded_tokens = sum(2 * views.n_cells * int(views.cell_lengths().max()) for views in timed)
    total_s = sum(timing["seconds"])
    model_flops_per_s = training_flops(enc, real_tokens) / total_s
    padded_flops_per_s = training_flops(enc, padded_tokens) / total_s
    return {
        "model": {"encoder": enc.to_dict(), "n_genes": n_genes, "n_parameters": count_parameters(model)},
        "data": {
            "n_genes": n_genes,
            "zero_fraction": zero_fraction,
            "nonzero_genes_per_cell": length_summary(lengths),
            "view_keep": pretrain.view_keep,
        },
        "settings": {
            "batch_size": batch_size,
            "global_batch_for_length_sorting": pretrain.batch_size,
            "warmup_steps": warmup,
            "timed_steps": repeats,
            "autocast": "torch.bfloat16",
            "seed": seed,
        },
        "seconds_per_step_median": timing["median_s"],
        "seconds_all": timing["seconds"],
        "cells_per_s": batch_size * repeats / total_s,
        "tokens_per_step": {"real": real_tokens / repeats, "padded": padded_tokens / repeats},
        "model_flops_per_s": model_flops_per_s,
        "flops_per_s_with_padding": padded_flops_per_s,
        "peak_bf16_flops_per_s": peak_flops,
        "mfu": model_flops_per_s / peak_flops if peak_flops else None,
        "mfu_with_padding": padded_flops_per_s / peak_flops if peak_flops else None,
        "peak_memory_mb": memory.peak_bytes / MB,
    }


def run(
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_genes: int = PAPER_N_GENES,
    zero_fraction: float = DEFAULT_ZERO_FRACTION,
    encoder: dict | EncoderConfig | None = None,
    warmup: int = 3,
    repeats: int = 10,
    peak_tflops: float | None = None,
    device: str | None = None,
    threads: int | None = None,
    seed: int = 0,
) -> dict:
    """The gpu.json record: measured on CUDA, or {"available": false, ...} with the FLOP model only."""
    set_threads(threads)
    enc = encoder_config(encoder, EncoderConfig())
    device = torch.device(device or "cuda")
    record = {
        "benchmark": "gpu",
        "description": "Paper-size CellLM training step in bf16 autocast: cells/s and model FLOP/s as a fraction of the GPU's dense bf16 peak",
        "model": {"encoder": enc.to_dict(), "n_genes": n_genes},
        "flop_model": flop_model(enc),
        "targets": {"mfu": target("model FLOP/s / dense bf16 peak", None, MFU_TARGET, at_least=True)},
    }
    if not torch.cuda.is_available() or device.type != "cuda":
        reason = "torch.cuda.is_available() is False" if not torch.cuda.is_available() else f"device {device} is not CUDA"
        return {**record, "available": False, "reason": reason, "environment": environment(torch.device("cpu"))}
    record.update(available=True, environment=environment(device))
    peak, record["peak_source"] = peak_bf16_flops(torch.cuda.get_device_name(device), peak_tflops)
    try:
        measured = measure(device, enc, batch_size, n_genes, zero_fraction, warmup, repeats, peak, seed)
    except torch.cuda.OutOfMemoryError:
        return {**record, "error": f"out of memory at batch size {batch_size} (try --batch-size {max(1, batch_size // 2)})"}
    record["targets"]["mfu"] = target("model FLOP/s / dense bf16 peak", measured["mfu"], MFU_TARGET, at_least=True)
    return {**record, **measured}


def table(result: dict) -> str:
    fm = result["flop_model"]
    head = (
        f"paper model: {fm['forward_flops_per_token'] / 1e6:.1f} MFLOP/token forward, "
        f"{fm['training_flops_per_token'] / 1e6:.1f} MFLOP/token per training step"
    )
    if not result["available"]:
        return f"{head}\nno CUDA device ({result['reason']}): nothing measured"
    if "error" in result:
        return f"{head}\n{result['error']}"
    row = {
        "gpu": result["environment"]["gpu"],
        "batch_cells": result["settings"]["batch_size"],
        "s_per_step": result["seconds_per_step_median"],
        "cells_per_s": result["cells_per_s"],
        "model_TFLOP_s": result["model_flops_per_s"] / 1e12,
        "peak_TFLOP_s": (result["peak_bf16_flops_per_s"] or float("nan")) / 1e12,
        "mfu": result["mfu"],
        "mfu_with_padding": result["mfu_with_padding"],
        "peak_memory_mb": result["peak_memory_mb"],
    }
    return f"{head}\n{format_table([row], list(row))}"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="cells per step (two views each)")
    parser.add_argument("--n-genes", type=int, default=PAPER_N_GENES)
    parser.add_argument("--zero-fraction", type=float, default=DEFAULT_ZERO_FRACTION)
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if not in the table")


def _run_from_args(args: argparse.Namespace) -> dict:
    return run(
        args.batch_size,
        args.n_genes,
        args.zero_fraction,
        args.encoder,
        peak_tflops=args.peak_tflops,
        device=args.device,
        seed=args.seed,
        **given(args, "warmup", "repeats"),
    )


def main(argv: list[str] | None = None) -> int:
    return benchmark_cli(
        "Paper-size model bf16 training step on CUDA: cells/s and model FLOP utilisation.", _add_arguments, _run_from_args, table, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
