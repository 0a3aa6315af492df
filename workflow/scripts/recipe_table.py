from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.figures.recipe import plot_recipes
from benchmarks.recipe import write_table

write_table(list(snakemake.input.scores), snakemake.output.csv, snakemake.output.md)
plot_recipes(snakemake.output.csv, snakemake.output.png)
