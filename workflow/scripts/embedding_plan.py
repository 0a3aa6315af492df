from _shim import log_to_file

log_to_file(snakemake)

from celllm.shards import write_plan

write_plan(snakemake.input[0], snakemake.output[0], snakemake.params.shard_cells, snakemake.params.block_cells)
