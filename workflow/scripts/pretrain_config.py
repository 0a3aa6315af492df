from _shim import log_to_file

log_to_file(snakemake)

from celllm.config import CellLMConfig
from celllm.io import atomic_path

with atomic_path(snakemake.output[0]) as tmp:
    CellLMConfig.from_dict(snakemake.params.model, "config: pretrain.model").save(tmp)
