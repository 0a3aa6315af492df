from _shim import log_to_file

log_to_file(snakemake)

from celllm.data.genes import GeneSymbols
from celllm.data.sources.string_ppi import parse_string
from celllm.io import atomic_path

edges = GeneSymbols.from_hgnc(snakemake.input.hgnc).harmonise_edges(parse_string(snakemake.input.links, snakemake.input.info), snakemake.input.links)
with atomic_path(snakemake.output[0]) as tmp:
    edges.to_csv(tmp, sep="\t", index=False)
