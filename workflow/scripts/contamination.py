from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.contamination import write_contamination

write_contamination(snakemake.input.store, list(snakemake.input.data), snakemake.output.csv, snakemake.output.md)
