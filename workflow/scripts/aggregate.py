from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.aggregate import write_tables
from benchmarks.tasks import TABLE_METRICS

write_tables(snakemake.input, snakemake.output.csv, snakemake.output.md, TABLE_METRICS[snakemake.wildcards.task])
