from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.runner import make_split

w = snakemake.wildcards
files = dict(snakemake.input.items())  # file roles of the task: data (+ response)
for seed, out in zip(snakemake.params.seeds, snakemake.output):
    make_split(w.task, w.setting, seed, files, out, snakemake.params.fractions)
