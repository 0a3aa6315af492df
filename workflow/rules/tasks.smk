# Downstream tasks: one split file per (task, dataset, setting, seed); one job per model runs every seed.
# Each job's params hold only what it depends on (a setting's fractions, a model's options),
# so editing one model's options re-runs that model's jobs and nothing else.


rule split:
    input:
        unpack(split_inputs),
    output:
        expand("results/splits/{{task}}/{{dataset}}/{{setting}}/seed{seed}.tsv", seed=SEEDS),
    log:
        "logs/splits/{task}/{dataset}/{setting}.log",
    conda:
        ENV
    threads: 1
    params:
        fractions=lambda wildcards: setting_fractions(wildcards.task, wildcards.setting),
        seeds=SEEDS,
    script:
        "../scripts/split.py"


# Molecular graphs and fingerprints of every drug of a response table, computed once.
rule drug_features:
    input:
        "results/data/{dataset}.response.tsv",
    output:
        "results/features/{dataset}.drugs.pt",
    log:
        "logs/features/{dataset}.drugs.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/drug_features.py"


# A checkpoint's cell embeddings of a dataset, through the user-facing `celllm embed`;
# every frozen-encoder run of that dataset reads them instead of re-embedding.
rule embed:
    input:
        data="results/data/{dataset}.h5ad",
        checkpoint="results/pretrain/{checkpoint}",
    output:
        "results/embeddings/{checkpoint}/{dataset}.h5ad",
    log:
        "logs/embeddings/{checkpoint}/{dataset}.log",
    conda:
        ENV
    threads: config["threads"]
    script:
        "../scripts/embed.py"


# One job per (task, dataset, model) runs every setting and seed: the imports, the data and the
# checkpoint are loaded once, which is most of a small run's cost (about 3 s a job on 2 cores).
# One rule per task, run_{task}: a rule's outputs follow from its wildcards, and each task has
# its own settings.
for _task in config["tasks"]:

    rule:
        name:
            f"run_{_task}"
        input:
            unpack(run_inputs(_task)),
        output:
            metrics=run_outputs(_task, "metrics.json"),
            predictions=run_outputs(_task, "predictions.csv"),
        log:
            f"logs/runs/{_task}/{{dataset}}/{{model}}.log",
        conda:
            ENV
        threads: config["threads"]
        params:
            task=_task,
            runs=task_runs(_task),
            options=lambda wildcards, task=_task: model_options(task, wildcards.model),
        script:
            "../scripts/run_model.py"
