from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.ablations import ablated_config
from celllm.io import atomic_path

config = ablated_config(snakemake.params.model, snakemake.params.base, snakemake.wildcards.checkpoint_name)
with atomic_path(snakemake.output[0]) as tmp:
    config.save(tmp)
