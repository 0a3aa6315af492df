# Config validation and the helpers that turn config + task specs + model registry into file lists.
from pathlib import Path

from snakemake.utils import validate

from benchmarks import registry
from benchmarks.ablations import PRETRAINED, checkpoint_name
from benchmarks.tasks import TASKS, get_task, task_settings
from celllm.data.catalog import CATALOG, read_sources


validate(config, "../schemas/config.schema.yaml")

unknown_tasks = set(config["tasks"]) - set(TASKS)
if unknown_tasks:
    raise ValueError(f"config: unknown task(s) {', '.join(sorted(unknown_tasks))} (known: {', '.join(TASKS)})")

SEEDS = config["seeds"]
# every rule runs in the project environment (environment.yml); see README
ENV = "../../environment.yml"
PRETRAIN_NAME = config["pretrain"]["name"]
CHECKPOINT = f"results/pretrain/{PRETRAIN_NAME}"
VOCAB = f"results/pretrain/{PRETRAIN_NAME}.vocab.txt"


def task_models(task):
    """The task's configured models, or every registered model that supports it."""
    chosen = config["tasks"][task].get("models") or registry.models_for(task)
    for name in chosen:
        if task not in registry.get(name).tasks:
            raise ValueError(f"config: model '{name}' does not support task '{task}'")
    return chosen


def settings_of(task):
    return list(task_settings(task, config["tasks"][task]))


def pretrainings():
    """Every pretraining some configured model needs: the configured one and its ablations."""
    wanted = {PRETRAINED} | {registry.get(m).checkpoint for t in config["tasks"] for m in task_models(t)}
    return sorted(checkpoint_name(PRETRAIN_NAME, p) for p in wanted if p)


def model_checkpoint(model):
    """results/pretrain/... of the pretraining the model needs, or None."""
    pretraining = registry.get(model).checkpoint
    return f"results/pretrain/{checkpoint_name(PRETRAIN_NAME, pretraining)}" if pretraining else None


wildcard_constraints:
    task="|".join(TASKS),
    dataset="[A-Za-z0-9_.-]+",
    setting="[A-Za-z0-9_]+",
    model="[A-Za-z0-9_]+",
    seed=r"\d+",
    checkpoint_name="|".join(pretrainings()),


def run_dir(task, dataset, setting, model):
    return f"results/runs/{task}/{dataset}/{setting}/{model}"


def run_records(task):
    """metrics.json of every (dataset, setting, model, seed) of a task."""
    return [
        f"{run_dir(task, dataset, setting, model)}/seed{seed}/metrics.json"
        for dataset in config["tasks"][task]["datasets"]
        for setting in settings_of(task)
        for model in task_models(task)
        for seed in SEEDS
    ]


def table_outputs():
    return expand("results/tables/{task}.{ext}", task=list(config["tasks"]), ext=["csv", "md"])


def dataset_inputs(task, dataset):
    """The files of one dataset of a task: its .h5ad, and for drug response its pairs."""
    inputs = {"data": f"results/data/{dataset}.h5ad"}
    if get_task(task).kind == "regression":
        inputs["response"] = f"results/data/{dataset}.response.tsv"
    return inputs


def split_inputs(wildcards):
    return dataset_inputs(wildcards.task, wildcards.dataset)


def run_inputs(wildcards):
    inputs = dataset_inputs(wildcards.task, wildcards.dataset)
    w = wildcards
    inputs["splits"] = [f"results/splits/{w.task}/{w.dataset}/{w.setting}/seed{seed}.tsv" for seed in SEEDS]
    if get_task(wildcards.task).kind == "regression":
        inputs["drugs"] = f"results/features/{wildcards.dataset}.drugs.pt"
    folder = model_checkpoint(wildcards.model)
    if folder:
        inputs["checkpoint"] = folder
        inputs["embeddings"] = f"results/embeddings/{Path(folder).name}/{wildcards.dataset}.h5ad"
    return inputs


# Real data sources (config/datasets.tsv) and the files each real dataset is built from.

SOURCE_TABLE = Path(workflow.basedir) / config["sources"]
SOURCES = read_sources(SOURCE_TABLE)
# checksums recorded by first downloads, verified by every later one (beside the table)
LOCK = str(SOURCE_TABLE.with_name(SOURCE_TABLE.name.replace(".tsv", "") + ".lock.tsv"))


# downloads whose address is computed from another file (the PubChem query lists GDSC's CIDs)
DERIVED = {"pubchem_smiles": "results/raw/pubchem_smiles/pubchem_smiles.csv"}


def raw_file(source):
    if source in DERIVED:
        return DERIVED[source]
    if source not in SOURCES.index:
        raise ValueError(f"{SOURCE_TABLE}: no row for source '{source}'")
    return f"results/raw/{source}/{SOURCES.loc[source, 'file']}"


def source_inputs(wildcards):
    """The downloaded files of a real dataset, by source id."""
    return {s: raw_file(s) for s in CATALOG[wildcards.dataset].sources}


# Figures: which runs they draw, and which exist for this config.
FIGURE_MODEL = "celllm_probe"  # the confusion matrices and UMAPs show the frozen pretrained encoder


def scatter_models():
    """Predicted-vs-measured panels: CellLM, the best-known baseline and the per-drug control, as configured."""
    return [m for m in ("celllm_probe", "deepcdr_mlp", "drug_mean") if m in task_models("drug_response")]


def figure_files():
    tasks = config["tasks"]
    names = ["pretrain_losses"] + [t for t in tasks]
    if "annotation" in tasks and FIGURE_MODEL in task_models("annotation"):
        names += [f"{kind}_{d}" for d in tasks["annotation"]["datasets"] for kind in ("confusion", "umap")]
    if "drug_response" in tasks and scatter_models():
        names += [f"scatter_{tasks['drug_response']['datasets'][0]}"]
    # performance figures only where `snakemake perf` has measured
    names += [f"perf_{b}" for b in ("dnc", "tokens") if Path(f"results/perf/{b}.json").exists()]
    return [f"results/figures/{name}.png" for name in names]
