from _shim import log_to_file

log_to_file(snakemake)

from celllm.data.download import extract

extract(snakemake.input[0], snakemake.output[0])
