from _shim import log_to_file

log_to_file(snakemake)

from celllm.data.catalog import build_dataset

files = {name: path for name, path in snakemake.input.items() if name != "hgnc"}
build_dataset(snakemake.wildcards.dataset, files, snakemake.input.hgnc, snakemake.output[0], snakemake.output.get("response"))
