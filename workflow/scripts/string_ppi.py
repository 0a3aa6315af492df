from _shim import log_to_file

log_to_file(snakemake)

from ingest.catalog import build_network
from ingest.download import pin_sources

given = snakemake.input
pin_sources(dict(given.items()), snakemake.params.sources, snakemake.params.lock)
build_network(given.string_links, given.string_info, given.hgnc, snakemake.output.edges, snakemake.output.ledger)
