from _shim import log_to_file

log_to_file(snakemake)

import sys

import torch

from celllm.checkpoint import progress_folder, publish_checkpoint
from celllm.cli import main

# The checkpoint trains in a progress folder with --resume, so a killed job, run again,
# continues from its last periodic checkpoint; the output appears only when training is done.
torch.set_num_threads(snakemake.threads)
given = snakemake.input
progress = progress_folder(snakemake.output[0], [given.config, given.vocab, given.gene_embeddings, f"{given.store}/manifest.json"])
options = ["--config", given.config, "--vocab", given.vocab, "--gene-embeddings", given.gene_embeddings]
code = main(["pretrain", "--data", given.store, *options, "--out", str(progress), "--resume"])
if code:
    sys.exit(code)
publish_checkpoint(progress, snakemake.output[0])
