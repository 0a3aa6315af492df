from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.aggregate import write_tables
from benchmarks.tasks import get_task

task = get_task(snakemake.wildcards.task)
write_tables(snakemake.input, snakemake.output.csv, snakemake.output.md, task.headline, details=task.detail_tables)
