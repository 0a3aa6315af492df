from _shim import log_to_file

log_to_file(snakemake)

from ingest.catalog import build_dataset
from ingest.download import pin_sources

pin_sources(dict(snakemake.input.items()), snakemake.params.sources, snakemake.params.lock)
files = {name: path for name, path in snakemake.input.items() if name != "hgnc"}
build_dataset(snakemake.wildcards.dataset, files, snakemake.input.hgnc, snakemake.output[0], snakemake.output.get("response"))
