from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.protocol import stratified_split, write_split
from benchmarks.tasks.classification import label_column
from celllm.io import read_dataset

column = label_column(snakemake.wildcards.task)
adata = read_dataset(snakemake.input.data, required_obs=[column])
fractions = snakemake.params.fractions
split = stratified_split(adata.obs[column], int(snakemake.wildcards.seed), val=fractions["val"], test=fractions["test"])
write_split(snakemake.output[0], adata.obs_names.astype(str), split)
