from _shim import log_to_file

log_to_file(snakemake)

from pathlib import Path

import torch

from benchmarks.registry import ModelContext
from benchmarks.runner import run_task
from benchmarks.tasks import get_task

w, given = snakemake.wildcards, snakemake.input
context = ModelContext(
    checkpoint=Path(given.checkpoint) if given.get("checkpoint") else None,
    embeddings=Path(given.embeddings) if given.get("embeddings") else None,
    network=Path(given.network) if given.get("network") else None,
    threads=snakemake.threads,
    device="cuda" if torch.cuda.is_available() else "cpu",
    options=snakemake.params.options,
)
files = {role: given[role] for role in get_task(w.task).run_inputs}  # the task's file roles
splits = given.get("splits") or [None] * len(snakemake.params.seeds)  # a zero-shot task has none
for seed, split, metrics in zip(snakemake.params.seeds, splits, snakemake.output.metrics):
    run_task(w.task, w.setting, files, split, w.model, seed, Path(metrics).parent, context)
