from _shim import log_to_file

log_to_file(snakemake)

from celllm.io import read_dataset
from ingest.demo import write_recipe_datasets

genes = read_dataset(snakemake.input.genes_from).var_names
write_recipe_datasets(genes, dict(snakemake.output.items()), **snakemake.params.simulation)
