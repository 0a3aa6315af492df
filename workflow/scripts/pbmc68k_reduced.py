from _shim import log_to_file

log_to_file(snakemake)

from celllm.io import write_h5ad
from ingest.pbmc import load_pbmc68k_reduced

write_h5ad(load_pbmc68k_reduced(), snakemake.output[0])
