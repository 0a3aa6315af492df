from _shim import log_to_file

log_to_file(snakemake)

from celllm.io import atomic_path
from celllm.tokens import Vocabulary

with atomic_path(snakemake.output[0]) as tmp:
    Vocabulary.from_datasets(snakemake.input.corpus).save(tmp)
