from _shim import log_to_file

log_to_file(snakemake)

import torch

from celllm.embed import embed_file

torch.set_num_threads(snakemake.threads)
embed_file(snakemake.input.data, snakemake.input.checkpoint, snakemake.output[0], progress=False)
