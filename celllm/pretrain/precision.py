"""Mixed precision: one rule for the trainer, the step and the benchmarks."""

from __future__ import annotations

import contextlib

import torch


def autocast_dtype(precision: str, device) -> torch.dtype | None:
    """bf16 autocast only on CUDA when `precision` is "bf16"; CPU always runs float32."""
    return torch.bfloat16 if precision == "bf16" and torch.device(device).type == "cuda" else None


def autocast(device_type: str, dtype: torch.dtype | None):
    """Autocast to `dtype`, or a no-op context when it is None."""
    return torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
