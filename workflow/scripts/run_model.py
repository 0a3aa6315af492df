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
files = {role: given[role] for role in get_task(snakemake.params.task).run_inputs}  # the task's file roles
splits = set(given.get("splits") or [])  # a zero-shot task has none
for metrics in map(Path, snakemake.output.metrics):  # results/runs/{task}/{dataset}/{setting}/{model}/seed{seed}/metrics.json
    task, dataset, setting, seed = metrics.parts[-6], metrics.parts[-5], metrics.parts[-4], int(metrics.parts[-2].removeprefix("seed"))
    split = f"results/splits/{task}/{dataset}/{setting}/seed{seed}.tsv"
    run_task(task, setting, files, split if split in splits else None, w.model, seed, metrics.parent, context)
