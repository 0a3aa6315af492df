from _shim import log_to_file

log_to_file(snakemake)

from celllm.released import import_released
from ingest.download import pin_sources

given = snakemake.input
pin_sources(dict(given.items()), snakemake.params.sources, snakemake.params.lock)
import_released(given.celllm_released, given.celllm_released_genes, snakemake.output[0], hgnc=given.hgnc)
