from _shim import log_to_file

log_to_file(snakemake)

import importlib

benchmark = importlib.import_module(f"benchmarks.perf.{snakemake.wildcards.benchmark}")
benchmark.main(["--out", snakemake.output[0], "--threads", str(snakemake.threads)])
