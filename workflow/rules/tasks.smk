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


# A checkpoint's cell embeddings of a dataset, written as the user-facing `celllm embed` writes them;
# every frozen-encoder run of that dataset reads them instead of re-embedding. A dataset of more than
# embed.shard_cells cells is embedded in shards, one job each (a GPU each on a cluster), and gathered
# into the same file, byte for byte (celllm/shards.py). How many shards follows from the number of
# cells, known only once the dataset is made: the plan is a Snakemake checkpoint (not a model
# checkpoint), Snakemake's own way to a data-dependent DAG; the embed job's input function asks for it
# and is re-evaluated once it exists (common.smk: embedding_inputs). The plan counts cells only.
checkpoint embedding_plan:
    input:
        "results/data/{dataset}.h5ad",
    output:
        "results/embeddings/{dataset}.shards.json",
    log:
        "logs/embeddings/{dataset}.shards.log",
    conda:
        ENV
    threads: 1
    params:
        shard_cells=config["embed"]["shard_cells"],
        block_cells=EMBED_BLOCK,
    script:
        "../scripts/embedding_plan.py"


# One shard: the embeddings of a range of the dataset's cells, kept until the embed job has gathered them.
rule embed_shard:
    input:
        data="results/data/{dataset}.h5ad",
        checkpoint="results/pretrain/{checkpoint}",
        plan="results/embeddings/{dataset}.shards.json",
    output:
        temp("results/embeddings/{checkpoint}/{dataset}.shard{shard}.h5"),
    log:
        "logs/embeddings/{checkpoint}/{dataset}.shard{shard}.log",
    wildcard_constraints:
        shard=r"\d+",
    conda:
        ENV
    threads: config["threads"]
    resources:
        **job_resources("embed"),
    params:
        block_cells=EMBED_BLOCK,
    script:
        "../scripts/embed_shard.py"


# The dataset's embeddings: embedded here in one job, or gathered from its shards (one thread, no GPU).
rule embed:
    input:
        unpack(embedding_inputs),
    output:
        "results/embeddings/{checkpoint}/{dataset}.h5ad",
    log:
        "logs/embeddings/{checkpoint}/{dataset}.log",
    conda:
        ENV
    threads: embedding_threads
    resources:
        **job_resources("embed") | {"gpu": embedding_gpus},
    params:
        block_cells=EMBED_BLOCK,
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
