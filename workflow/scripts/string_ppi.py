from _shim import log_to_file

log_to_file(snakemake)

from celllm.genes import GeneSymbols
from celllm.io import atomic_path
from ingest.download import pin_sources
from ingest.sources.string_ppi import parse_string

given = snakemake.input
pin_sources(dict(given.items()), snakemake.params.sources, snakemake.params.lock)
edges = GeneSymbols.from_hgnc(given.hgnc).harmonise_edges(parse_string(given.string_links, given.string_info), given.string_links)
with atomic_path(snakemake.output[0]) as tmp:
    edges.to_csv(tmp, sep="\t", index=False)
