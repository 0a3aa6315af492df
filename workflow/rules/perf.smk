# Performance benchmarks (benchmarks/perf), not part of `all`: `snakemake --cores 2 perf`.
# Each writes results/perf/{benchmark}.json and prints its table to the log; the
# figures of those that have one are drawn with them (the report shows them).
# gpu.json is always written: measured where torch sees a CUDA device, and
# {"available": false, ...} with the analytic FLOP model elsewhere; on a GPU
# machine, `snakemake --cores N perf --forcerun results/perf/gpu.json` measures it.

import os

from benchmarks.perf.released_batch import DATASETS as RELEASED_BATCH_DATASETS

# A benchmark must not share the machine with other jobs: each asks for every core of this
# machine, which Snakemake lowers to --cores. (`workflow.cores` fails where no --cores is
# given: --report, --unlock.)
EVERY_CORE = os.cpu_count() or 1


rule perf:
    input:
        expand("results/perf/{benchmark}.json", benchmark=PERF_BENCHMARKS),
        expand("results/figures/perf_{benchmark}.png", benchmark=PERF_FIGURES),


rule perf_benchmark:
    output:
        "results/perf/{benchmark}.json",
    log:
        "logs/perf/{benchmark}.log",
    wildcard_constraints:
        benchmark="|".join(b for b in PERF_BENCHMARKS if b != "released_batch"),
    conda:
        ENV
    threads: EVERY_CORE
    script:
        "../scripts/perf.py"


# The released stabiliser's batch dependence reads data and the configured pretraining's
# checkpoint (run in released mode); its module takes them as options, hence a rule of its own.
rule perf_released_batch:
    input:
        data=expand("results/data/{dataset}.h5ad", dataset=RELEASED_BATCH_DATASETS),
        checkpoint=CHECKPOINT,
    output:
        "results/perf/released_batch.json",
    log:
        "logs/perf/released_batch.log",
    conda:
        ENV
    threads: EVERY_CORE
    shell:
        "python -m benchmarks.perf.released_batch --out {output} --threads {threads} --data {input.data:q} "
        "--checkpoint {input.checkpoint:q} > {log:q} 2>&1"
