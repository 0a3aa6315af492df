from _shim import log_to_file

log_to_file(snakemake)

from pathlib import Path

from benchmarks.runner import score_runs

score_runs([Path(metrics).parent for metrics in snakemake.output])
