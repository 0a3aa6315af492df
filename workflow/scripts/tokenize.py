from _shim import log_to_file

log_to_file(snakemake)

from celllm.pretrain.store import build_token_store
from celllm.tokens import TokenConfig, Vocabulary

build_token_store(
    snakemake.input.corpus,
    snakemake.output[0],
    Vocabulary.load(snakemake.input.vocab),
    TokenConfig.from_dict(snakemake.params.tokens),
    progress=True,
)
