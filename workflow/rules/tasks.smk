# Downstream tasks: one split file per (task, dataset, setting, seed); one job per model runs every seed;
# one job per (task, dataset) scores the runs.
# Each job's params hold only what it depends on (a setting's fractions, a model's options),
# so editing one model's options re-runs that model's jobs and nothing else.
from benchmarks.runner import scoring_code_sha256


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
        fractions=split_fractions,
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


# One job per (task, dataset, model) runs every setting and seed and leaves each run's predictions
# (and embedding) as files, computing no metric (benchmarks/records.py): the imports, the data and the
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
            predictions=run_outputs(_task, "predictions"),
            arrays=run_outputs(_task, "arrays"),
            records=run_outputs(_task, "records"),
        log:
            f"logs/runs/{_task}/{{dataset}}/{{model}}.log",
        conda:
            ENV
        threads: config["threads"]
        resources:
            **job_resources("model"),
        params:
            task=_task,
            runs=task_runs(_task),
            options=options_of(_task),
        script:
            "../scripts/run_model.py"


# One job per (task, dataset) scores every run of it (every setting, model and seed) from the files
# the runs left, and writes each run's metrics.json; it never builds a model. Its params carry the
# SHA-256 of the code that scores (benchmarks.runner.scoring_sources: the metric modules and the
# task's scoring code), so editing a metric's definition re-scores, and so re-draws the tables,
# figures and summary, without re-running any model: the run rules do not see that code. A hash
# rather than the source files as inputs: an input path would point into wherever the project is
# checked out (the jobs run in a separate workdir), and an input compares modification times,
# which a checkout or a copy of the project changes without changing a line.
for _task in config["tasks"]:

    rule:
        name:
            f"score_{_task}"
        input:
            unpack(score_inputs(_task)),
        output:
            score_outputs(_task),
        log:
            f"logs/scores/{_task}/{{dataset}}.log",
        conda:
            ENV
        threads: 1
        params:
            scoring_code=scoring_code_sha256(_task),
        script:
            "../scripts/score.py"
