# Performance benchmarks (benchmarks/perf), not part of `all`: `snakemake --cores 2 perf`.
# Each writes results/perf/{benchmark}.json and prints its table to the log.
# gpu.json is always written: measured where torch sees a CUDA device, and
# {"available": false, ...} with the analytic FLOP model elsewhere; on a GPU
# machine, `snakemake --cores N perf --forcerun results/perf/gpu.json` measures it.
from benchmarks.perf import BENCHMARKS as PERF_BENCHMARKS


rule perf:
    input:
        expand("results/perf/{benchmark}.json", benchmark=PERF_BENCHMARKS),


rule perf_benchmark:
    output:
        "results/perf/{benchmark}.json",
    log:
        "logs/perf/{benchmark}.log",
    wildcard_constraints:
        benchmark="|".join(PERF_BENCHMARKS),
    # every core: a benchmark must not share the machine with other jobs
    threads: workflow.cores
    conda:
        ENV
    script:
        "../scripts/perf.py"
