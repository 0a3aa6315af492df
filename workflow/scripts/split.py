from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.tasks.run import TaskInputs, make_split

w = snakemake.wildcards
inputs = TaskInputs(snakemake.input.data, snakemake.input.get("response"))
for seed, out in zip(snakemake.params.seeds, snakemake.output):
    make_split(w.task, w.setting, seed, inputs, out, snakemake.params.fractions)
