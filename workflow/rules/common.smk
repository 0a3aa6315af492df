# Config validation and the helpers that turn config + task specs + model registry into file lists.
import json
import re
from pathlib import Path

from snakemake.utils import validate

from benchmarks import registry
from benchmarks import recipe as recipe_study
from benchmarks.accessions import ACCESSIONS as EVALUATION_ACCESSIONS
from celllm.outputs import file_sha256
from benchmarks.pretrainings import PRETRAINED, RELEASED_CHECKPOINT, checkpoint_folder, pretraining_config
from benchmarks.config import check_config, check_schema, task_models
from benchmarks.perf import BENCHMARKS as PERF_BENCHMARKS, FIGURES as PERF_FIGURES
from benchmarks.records import PREDICTIONS, RUN_RECORD, SCORED_RECORD, array_file
from benchmarks.tasks import TASKS, get_task, task_settings
from celllm.shards import read_plan
from ingest.catalog import CATALOG, STRING_EDGES, address_sources, read_sources
from ingest.demo import RECIPE_DATASETS, SIMULATED, SIMULATED_PPI
from ingest.download import MANUAL
from ingest.pbmc import DATASET as PBMC68K

# The schema refuses unknown keys and wrong types, check_config unknown names and options:
# both before any job, so `snakemake -n` catches a misspelt config (validate adds the defaults).
check_schema(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
validate(config, "../schemas/config.schema.yaml")


def dataset_in_place(name):
    """A dataset no rule makes, put in results/data/ by hand."""
    return Path(f"results/data/{name}.h5ad").exists()


def network_in_place(name):
    """An interaction table no rule makes, put in results/data/ by hand."""
    return Path(f"results/data/{name}.tsv").exists()


# The library's own sections (`celllm`, `ppi.graphmae`) as the library's config objects, with
# the library's defaults: resolved here once, and every rule reads them from here.
LIBRARY = check_config(config, dataset_in_place, network_in_place)
CELLLM = LIBRARY.celllm

SEEDS = config["seeds"]
# every rule runs in the project environment (environment.yml); see README
ENV = "../../environment.yml"
PRETRAIN_NAME = config["pretrain"]["name"]
CHECKPOINT = f"results/pretrain/{PRETRAIN_NAME}"
VOCAB = f"results/pretrain/{PRETRAIN_NAME}.vocab.txt"
TOKEN_STORE = f"results/pretrain/{PRETRAIN_NAME}.tokens"
PPI_EDGES = f"results/data/{config['ppi']['edges']}.tsv"


def canonical(value):
    """`value` with the keys of every mapping sorted. Snakemake compares a job's params as
    text, so a config whose keys are only reordered must not look changed (and re-run
    pretraining); every mapping a rule takes as params goes through here."""
    return json.loads(json.dumps(value, sort_keys=True))


def settings_of(task):
    return list(task_settings(task, config["tasks"][task]))


def setting_fractions(task, setting):
    """The configured split fractions of one setting ({} for the task spec's own)."""
    return canonical((config["tasks"][task].get("settings") or {}).get(setting) or {})


def model_options(task, model):
    """The configured options of one model on one task (e.g. epochs, lr)."""
    return canonical((config["tasks"][task].get("options") or {}).get(model) or {})


def split_fractions(wildcards):
    return setting_fractions(wildcards.task, wildcards.setting)


def options_of(task):
    """The params function of task's run rule: the configured options of the job's model."""

    def options(wildcards):
        return model_options(task, wildcards.model)

    return options


def checkpoint_folders():
    """Every checkpoint some configured model needs: the configured pretraining (always), its ablations, the released one."""
    wanted = {PRETRAINED} | {registry.get(m).pretraining for t in config["tasks"] for m in task_models(config, t)}
    return sorted(checkpoint_folder(PRETRAIN_NAME, p) for p in wanted if p)


def checkpoint_folders_trained_here():
    """The checkpoints pretrained here (all but the imported released one)."""
    return [name for name in checkpoint_folders() if name != RELEASED_CHECKPOINT]


def pretraining_options(wildcards):
    """The CellLM config (as a mapping: the job's params) that trains checkpoint folder `wildcards.checkpoint`."""
    return pretraining_config(CELLLM, PRETRAIN_NAME, wildcards.checkpoint).to_dict()


def job_resources(kind):
    """What a job of `kind` asks a scheduler for (config `resources`; profiles/slurm makes sbatch options of them)."""
    return dict(config["resources"].get(kind, {}))


def pretraining_threads():
    """A pretraining job's threads: each of its processes on a node gets `pretrain.threads`."""
    return config["pretrain"]["processes_per_node"] * config["pretrain"].get("threads", config["threads"])


def pretraining_resources():
    """A pretraining job's resources: a GPU per process; on several nodes, one task per node, which the job's
    script starts with srun itself (`mpi`: the SLURM executor then runs the script as it is, not in a job step)."""
    given = job_resources("pretrain")
    per_node, nodes = config["pretrain"]["processes_per_node"], config["pretrain"]["nodes"]
    gpus = given.pop("gpu", 0) * per_node
    if nodes > 1:  # GPUs per node: `gpu` would ask for that many in all, wherever SLURM finds them
        given.update(nodes=nodes, tasks=nodes, mpi="srun", slurm_extra="--ntasks-per-node=1")
        given["slurm_extra"] += f" --gpus-per-node={gpus}" if gpus else ""
    elif gpus:
        given["gpu"] = gpus
    return given


def model_checkpoint(model):
    """results/pretrain/... of the pretraining the model needs, or None."""
    pretraining = registry.get(model).pretraining
    return f"results/pretrain/{checkpoint_folder(PRETRAIN_NAME, pretraining)}" if pretraining else None


wildcard_constraints:
    task="|".join(TASKS),
    dataset="[A-Za-z0-9_.-]+",
    setting="[A-Za-z0-9_]+",
    model="[A-Za-z0-9_]+",
    seed=r"\d+",
    checkpoint="|".join(checkpoint_folders()),


# exact duplicate cells (.csv, .md), then the evaluation samples found in the corpus by accession (.csv, .md)
CONTAMINATION = [
    "results/tables/contamination.csv",
    "results/tables/contamination.md",
    "results/tables/contamination_accessions.csv",
    "results/tables/contamination_accessions.md",
]


def run_dir(task, dataset, setting, model):
    return f"results/runs/{task}/{dataset}/{setting}/{model}"


def run_records(task):
    """metrics.json of every (dataset, setting, model, seed) of a task."""
    return [
        f"{run_dir(task, dataset, setting, model)}/seed{seed}/metrics.json"
        for dataset in config["tasks"][task]["datasets"]
        for setting in settings_of(task)
        for model in task_models(config, task)
        for seed in SEEDS
    ]


def task_run_records(wildcards):
    return run_records(wildcards.task)


def table_outputs():
    return expand("results/tables/{task}.{ext}", task=list(config["tasks"]), ext=["csv", "md"]) + CONTAMINATION


def evaluation_datasets():
    """Every dataset a configured task scores, once, in config order."""
    return list(dict.fromkeys(d for task in config["tasks"].values() for d in task["datasets"]))


# Where each file role a task reads (benchmarks/tasks/spec.py) lives.
FILE_ROLES = {
    "data": "results/data/{dataset}.h5ad",
    "response": "results/data/{dataset}.response.tsv",
    "drugs": "results/features/{dataset}.drugs.pt",
}


def task_files(roles, dataset):
    return {role: FILE_ROLES[role].format(dataset=dataset) for role in roles}


def split_inputs(wildcards):
    return task_files(get_task(wildcards.task).split_inputs, wildcards.dataset)


def task_runs(task):
    """(setting, seed) of every run one (task, dataset, model) job makes, in the order of its splits and outputs."""
    return [(setting, seed) for setting in settings_of(task) for seed in SEEDS]


def run_inputs(task):
    """The input function of task's run rule: the task's files, every run's split (`task_runs` order), the model's files."""
    spec = get_task(task)

    def inputs(wildcards):
        files = task_files(spec.run_inputs, wildcards.dataset)
        if spec.needs_split:
            files["splits"] = [f"results/splits/{task}/{wildcards.dataset}/{setting}/seed{seed}.tsv" for setting, seed in task_runs(task)]
        return files | model_files(wildcards.model, wildcards.dataset)

    return inputs


def run_outputs(task, kind):
    """The files of `run_files` of one kind (predictions, arrays, records) of every run of one (task, dataset, model)
    job, in `task_runs` order."""
    folders = [f"results/runs/{task}/{{dataset}}/{setting}/{{model}}/seed{seed}" for setting, seed in task_runs(task)]
    return [path for folder in folders for path in run_files(task, folder)[kind]]


def run_files(task, folder):
    """What a run leaves in `folder` for scoring (benchmarks/records.py): its predictions, the task's arrays, its record."""
    return {
        "predictions": [f"{folder}/{PREDICTIONS}"],
        "arrays": [f"{folder}/{array_file(name)}" for name in get_task(task).arrays],
        "records": [f"{folder}/{RUN_RECORD}"],
    }


def scored_runs(task):
    """(setting, model, seed) of every run one scoring job (task, dataset) scores, in the order of its outputs."""
    return [(setting, model, seed) for setting in settings_of(task) for model in task_models(config, task) for seed in SEEDS]


def score_inputs(task):
    """The input function of task's score rule: the files of `run_files` of every run it scores, by kind."""

    def inputs(wildcards):
        folders = [f"{run_dir(task, wildcards.dataset, s, m)}/seed{seed}" for s, m, seed in scored_runs(task)]
        return {
            kind: [path for folder in folders for path in run_files(task, folder)[kind]] for kind in ("predictions", "arrays", "records")
        }

    return inputs


def score_outputs(task):
    """metrics.json of every run of one (task, dataset) scoring job, in `scored_runs` order."""
    return [f"results/runs/{task}/{{dataset}}/{setting}/{model}/seed{seed}/{SCORED_RECORD}" for setting, model, seed in scored_runs(task)]


def model_files(model, dataset):
    """The CellLM checkpoint a model needs and its cached embeddings of the dataset, and the interaction
    network for a model that reads it ({} for other models)."""
    folder = model_checkpoint(model)
    files = {"checkpoint": folder, "embeddings": f"results/embeddings/{Path(folder).name}/{dataset}.h5ad"} if folder else {}
    return files | ({"network": PPI_EDGES} if registry.get(model).needs_network else {})


# A checkpoint's embeddings of a dataset (tasks.smk: embedding_plan, embed_shard, embed): in one job, or, for
# a dataset of more than embed.shard_cells cells, in shards gathered by the embed job. How many shards is
# known only once the dataset exists, so the plan is a Snakemake checkpoint (a data-dependent DAG).
EMBED_BLOCK = LIBRARY.block_cells


def embedding_shards(wildcards):
    """The shard files of the embed job, in plan order; none where the dataset's plan keeps it in one job. Asking
    for the plan waits for it (checkpoints ... .get): Snakemake re-plans the DAG once it is written."""
    plan = read_plan(checkpoints.embedding_plan.get(dataset=wildcards.dataset).output[0])
    if len(plan) == 1:
        return []
    return [f"results/embeddings/{wildcards.checkpoint}/{wildcards.dataset}.shard{i}.h5" for i in range(len(plan))]


def embedding_inputs(wildcards):
    """The dataset and the checkpoint, and the shards the job gathers (if any)."""
    shards = embedding_shards(wildcards)
    given = {"data": FILE_ROLES["data"].format(dataset=wildcards.dataset), "checkpoint": f"results/pretrain/{wildcards.checkpoint}"}
    return given | ({"shards": shards} if shards else {})


def embedding_threads(wildcards, input):
    """The embed job's threads: the configured ones where it embeds, one where it only gathers shards."""
    return 1 if "shards" in input.keys() else config["threads"]


def embedding_gpus(wildcards, input):
    """The embed job's `gpu` resource: the configured one where it embeds, none where it only gathers shards."""
    return 0 if "shards" in input.keys() else job_resources("embed").get("gpu", 0)


def umap_models(wildcards):
    """Each model of the task that declares the UMAP figure, with the embedding its first seed's run saved."""
    task, setting = figure_task("umap")
    return {
        model: f"{run_dir(task, wildcards.dataset, setting, model)}/seed{SEEDS[0]}/{array_file('embedding')}"
        for model in task_models(config, task)
    }


def umap_inputs(wildcards):
    """The dataset (labels, donors) and every saved embedding of `umap_models`, by model."""
    return {"data": FILE_ROLES["data"].format(dataset=wildcards.dataset)} | umap_models(wildcards)


# Real data sources (config/datasets.tsv) and the files each real dataset is built from.

SOURCE_TABLE = Path(workflow.basedir) / config["sources"]
SOURCES = read_sources(SOURCE_TABLE)
# checksums recorded by first downloads, verified by every later one (beside the table)
LOCK = str(SOURCE_TABLE.with_name(SOURCE_TABLE.name.replace(".tsv", "") + ".lock.tsv"))


# What a parse may lose before it stops (config `data`, ingest/ledger.py), and how many tokens
# the model reads per cell, so that each ledger counts the cells tokenization will cut.
LOSSES = canonical(config.get("data") or {})
MAX_LEN = CELLLM.tokens.max_len


def raw_file(source):
    if source not in SOURCES.index:
        raise ValueError(f"{SOURCE_TABLE}: no row for source '{source}'")
    return f"resources/{source}/{SOURCES.loc[source, 'file']}"


def source_url(wildcards):
    return SOURCES.loc[wildcards.source, "url"]


def source_sha256(wildcards):
    return SOURCES.loc[wildcards.source, "sha256"]


def address_inputs(wildcards):
    """The files a source's address is filled from (PubChem's query lists GDSC's CIDs), by source id."""
    return {s: raw_file(s) for s in address_sources(SOURCES.loc[wildcards.source, "url"])}


def source_inputs(wildcards):
    """The downloaded files of a real dataset, by source id."""
    return {s: raw_file(s) for s in CATALOG[wildcards.dataset].sources}


def dataset_source_rows(wildcards):
    """`source_rows` of a real dataset's sources and HGNC (every parse maps gene names with it)."""
    return source_rows([*CATALOG[wildcards.dataset].sources, "hgnc"])


def vocabulary_inputs(wildcards):
    """The corpus, and HGNC where the vocabulary is the corpus's protein-coding genes."""
    corpus = {"corpus": expand("results/data/{name}.h5ad", name=config["pretrain"]["corpus"])}
    return corpus | ({"hgnc": raw_file("hgnc")} if config["pretrain"]["genes"] == "protein_coding" else {})


def source_rows(sources):
    """Checksum (and, for a file placed by hand, the page it comes from) of each source, for the
    parse jobs that pin their raw files in the lock. A downloaded file's address is in the lock
    already, and leaving it out of the params lets a mirror change it without a re-parse."""
    rows = {}
    for s in sources:
        url = SOURCES.loc[s, "url"]
        rows[s] = {"url": url if url.startswith(MANUAL) else "", "sha256": SOURCES.loc[s, "sha256"]}
    return rows


# Figures: which runs they draw, and which exist for this config. The detail figures are
# drawn for the tasks that declare them (benchmarks/tasks/): the confusion matrices show the
# configured focus model, the UMAPs every model of the embedding task, the predicted-vs-measured
# panels the configured scatter models.
FOCUS_MODEL = config["figures"]["focus"]


def figure_task(figure):
    """(task, its first configured setting) of the configured task that declares a detail figure, or None."""
    for task in config["tasks"]:
        if figure in get_task(task).figures:
            return task, settings_of(task)[0]
    return None


def figure_run_dir(figure, dataset, model):
    """The runs a detail figure draws: the model's on the dataset, in the declaring task's first setting."""
    task, setting = figure_task(figure)
    return run_dir(task, dataset, setting, model)


def scatter_models():
    """Predicted-vs-measured panels: the configured models the task runs."""
    task = figure_task("scatter")
    return [m for m in config["figures"]["scatter"] if task and m in task_models(config, task[0])]


# What figures need of the model registrations (kinds, colours), handed to them as params, so that
# a figure job imports no model file.
MODEL_LOOKS = registry.looks()


def table_figure_kwargs(wildcards, input):
    return {"table_csv": input.table, "task": wildcards.task, "looks": MODEL_LOOKS}


def confusion_inputs(wildcards):
    """The focus model's run records on the dataset, every seed."""
    return [f"{figure_run_dir('confusion', wildcards.dataset, FOCUS_MODEL)}/seed{seed}/metrics.json" for seed in SEEDS]


def confusion_figure_kwargs(wildcards, input):
    return {"metrics_json_paths": list(input)}


def scatter_inputs(wildcards):
    """Every seed's predictions of each scatter model, by model."""
    return {m: [f"{figure_run_dir('scatter', wildcards.dataset, m)}/seed{s}/predictions.csv" for s in SEEDS] for m in scatter_models()}


def scatter_figure_kwargs(wildcards, input):
    return {"prediction_csvs": {m: list(input[m]) for m in scatter_models()}, "looks": MODEL_LOOKS}


def umap_figure_kwargs(wildcards, input):
    return {"data_h5ad": input.data, "embeddings": {m: input[m] for m in umap_models(wildcards)}, "seed": SEEDS[0]}


def perf_plot(wildcards):
    return f"benchmarks.figures.perf:plot_{wildcards.benchmark}"


def perf_figure_kwargs(wildcards, input):
    return {f"{wildcards.benchmark}_json": input[0]}


def figure_files():
    tasks = config["tasks"]
    names = ["pretrain_losses"] + [t for t in tasks] + [f"{t}_geometry" for t in tasks if "geometry" in get_task(t).figures]
    where = figure_task("confusion")
    if where and FOCUS_MODEL in task_models(config, where[0]):
        names += [f"confusion_{d}" for d in tasks[where[0]]["datasets"]]
    where = figure_task("umap")
    if where and task_models(config, where[0]):
        names += [f"umap_{d}" for d in tasks[where[0]]["datasets"]]
    where = figure_task("scatter")
    if where and scatter_models():
        names += [f"scatter_{tasks[where[0]]['datasets'][0]}"]
    # performance figures only where `snakemake perf` has measured
    names += [f"perf_{b}" for b in PERF_FIGURES if Path(f"results/perf/{b}.json").exists()]
    return [f"results/figures/{name}.png" for name in names]


# The recipe study (workflow/rules/recipe.smk, benchmarks/recipe.py)
def recipe_simulated_corpus(wildcards):
    """The study's inputs exist only where the corpus is the simulated one: its validation cells come from that world."""
    if list(config["pretrain"]["corpus"]) != [SIMULATED["corpus"]]:
        raise ValueError(
            f"recipe: the study validates on the simulated world, so it pretrains on its corpus; "
            f"this config's pretrain.corpus is {config['pretrain']['corpus']} (run it with the default config)"
        )
    return {"store": TOKEN_STORE, "vocab": VOCAB, "gene_embeddings": rules.ppi.output.embeddings}


def recipe_options(wildcards):
    """The CellLM config (as a mapping: the job's params) of recipe variant `wildcards.variant`."""
    return recipe_study.recipe_config(CELLLM, wildcards.variant).to_dict()


def recipe_score_inputs(wildcards):
    given = {key: f"results/data/{name}.h5ad" for key, name in RECIPE_DATASETS.items()}
    given["pbmc"] = f"results/data/{PBMC68K}.h5ad"
    if wildcards.variant != recipe_study.PCA:
        given["checkpoint"] = f"results/recipe/runs/{wildcards.variant}"
    return given
