from _shim import log_to_file

log_to_file(snakemake)

import torch

from celllm.checkpoint import progress_folder, publish_checkpoint
from celllm.config import CellLMConfig
from celllm.pretrain.run import pretrain_from_files

# The checkpoint trains in a progress folder with resume, so a killed job, run again,
# continues from its last periodic checkpoint; the output appears only when training is done.
torch.set_num_threads(snakemake.threads)
given, celllm = snakemake.input, snakemake.params.celllm
progress = progress_folder(snakemake.output[0], [given.vocab, given.gene_embeddings, f"{given.store}/manifest.json"], settings=celllm)
cfg = CellLMConfig.from_dict(celllm, f"rule {snakemake.rule}: params.celllm")
pretrain_from_files([given.store], progress, cfg, vocab=given.vocab, gene_embeddings=given.gene_embeddings, resume=True)
publish_checkpoint(progress, snakemake.output[0])
