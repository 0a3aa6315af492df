from _shim import log_to_file

log_to_file(snakemake)

from pathlib import Path

import torch

from benchmarks.registry import ModelContext
from benchmarks.runner import run_model
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
task = snakemake.params.task
files = {role: given[role] for role in get_task(task).run_inputs}  # the task's file roles
runs = snakemake.params.runs  # (setting, seed), in the order of the splits and the outputs
splits = given.get("splits") or [None] * len(runs)  # a zero-shot task has none
for (setting, seed), split, record in zip(runs, splits, snakemake.output.records, strict=True):
    run_model(task, setting, files, split, w.model, seed, Path(record).parent, context)
