from _shim import log_to_file

log_to_file(snakemake)

from pathlib import Path

from benchmarks.registry import ModelContext
from benchmarks.tasks.classification import run_classification

checkpoint = snakemake.input.get("checkpoint")
context = ModelContext(checkpoint=Path(checkpoint) if checkpoint else None, threads=snakemake.threads)
run_classification(
    task=snakemake.wildcards.task,
    dataset_path=snakemake.input.data,
    split_path=snakemake.input.split,
    model_name=snakemake.wildcards.model,
    seed=int(snakemake.wildcards.seed),
    out_dir=Path(snakemake.output.metrics).parent,
    context=context,
    config=snakemake.params.task_config,
)
