from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.accessions import write_accession_overlap
from benchmarks.contamination import write_contamination

write_contamination(snakemake.input.store, list(snakemake.input.data), snakemake.output.csv, snakemake.output.md)
write_accession_overlap(
    list(snakemake.input.data),
    list(snakemake.input.corpus),
    snakemake.output.accessions_csv,
    snakemake.output.accessions_md,
)
