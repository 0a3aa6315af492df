from _shim import log_to_file

log_to_file(snakemake)

import sys

import torch

from celllm.cli import main

torch.set_num_threads(snakemake.threads)
data = [arg for path in snakemake.input.corpus for arg in ("--data", path)]
options = ["--config", snakemake.input.config, "--vocab", snakemake.input.vocab, "--gene-embeddings", snakemake.input.gene_embeddings]
sys.exit(main(["pretrain", *data, *options, "--out", snakemake.output[0]]))
