from _shim import log_to_file

log_to_file(snakemake)

import torch

from celllm.ppi import GraphMAEConfig
from celllm.ppi.pipeline import embed_vocabulary
from celllm.tokens import Vocabulary

torch.set_num_threads(snakemake.threads)
embed_vocabulary(
    snakemake.input.edges,
    Vocabulary.load(snakemake.input.vocab),
    snakemake.output.embeddings,
    dim=snakemake.params.dim,
    cfg=GraphMAEConfig.from_dict(snakemake.params.graphmae),
    min_score=snakemake.params.min_score,
    log_path=snakemake.output.log_csv,
    progress=True,
)
