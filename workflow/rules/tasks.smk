# Downstream tasks: one split file per (task, dataset, seed), one run per model.


rule split:
    input:
        data="results/data/{dataset}.h5ad",
    output:
        "results/splits/{task}/{dataset}/seed{seed}.tsv",
    params:
        fractions=lambda wildcards: config["tasks"][wildcards.task]["split"],
    log:
        "logs/splits/{task}/{dataset}/seed{seed}.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/split.py"


rule run_classification:
    input:
        unpack(run_inputs),
    output:
        metrics="results/runs/{task}/{dataset}/{model}/seed{seed}/metrics.json",
        predictions="results/runs/{task}/{dataset}/{model}/seed{seed}/predictions.csv",
    params:
        task_config=lambda wildcards: config["tasks"][wildcards.task],
    log:
        "logs/runs/{task}/{dataset}/{model}/seed{seed}.log",
    threads: config["threads"]
    conda:
        ENV
    script:
        "../scripts/run_classification.py"
