from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.drugs import featurize_drugs
from benchmarks.tasks.data import read_response_table

table = read_response_table(snakemake.input[0])
featurize_drugs(table, source=snakemake.input[0]).save(snakemake.output[0])
