from _shim import log_to_file

log_to_file(snakemake)

import torch

from celllm.embed import embed_shard
from celllm.shards import read_plan

torch.set_num_threads(snakemake.threads)
start, stop = read_plan(snakemake.input.plan)[int(snakemake.wildcards.shard)]
embed_shard(
    snakemake.input.data,
    snakemake.input.checkpoint,
    snakemake.output[0],
    start,
    stop,
    progress=False,
    block_cells=snakemake.params.block_cells,
)
