from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.pretrainings import pretraining_config
from celllm.outputs import atomic_path

config = pretraining_config(snakemake.params.celllm, snakemake.params.base, snakemake.wildcards.checkpoint)
with atomic_path(snakemake.output[0]) as tmp:
    config.save(tmp)
