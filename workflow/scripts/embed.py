from _shim import log_to_file

log_to_file(snakemake)

import torch

from celllm.embed import embed_file, gather_shards

torch.set_num_threads(snakemake.threads)
given, out, block = snakemake.input, snakemake.output[0], snakemake.params.block_cells
if "shards" in given.keys():  # embedded in shards by embed_shard jobs
    gather_shards(given.data, given.checkpoint, given.shards, out, block_cells=block)
else:
    embed_file(given.data, given.checkpoint, out, progress=False, block_cells=block)
