# Config validation and the helpers that turn config + model registry into file lists.
from snakemake.utils import validate

from benchmarks import registry
from benchmarks.tasks import TASKS


validate(config, "../schemas/config.schema.yaml")

unknown_tasks = set(config["tasks"]) - set(TASKS)
if unknown_tasks:
    raise ValueError(f"config: unknown task(s) {', '.join(sorted(unknown_tasks))} (known: {', '.join(TASKS)})")

SEEDS = config["seeds"]
# every rule runs in the project environment (environment.yml); see README
ENV = "../../environment.yml"
CHECKPOINT = f"results/pretrain/{config['pretrain']['name']}"
VOCAB = f"results/pretrain/{config['pretrain']['name']}.vocab.txt"


wildcard_constraints:
    task="[A-Za-z0-9_]+",
    dataset="[A-Za-z0-9_.-]+",
    model="[A-Za-z0-9_]+",
    seed=r"\d+",


def task_models(task):
    """The task's configured models, or every registered model that supports it."""
    chosen = config["tasks"][task].get("models") or registry.models_for(task)
    for name in chosen:
        if task not in registry.get(name).tasks:
            raise ValueError(f"config: model '{name}' does not support task '{task}'")
    return chosen


def run_records(task):
    return expand(
        "results/runs/{task}/{dataset}/{model}/seed{seed}/metrics.json",
        task=task,
        dataset=config["tasks"][task]["datasets"],
        model=task_models(task),
        seed=SEEDS,
    )


def table_outputs():
    return expand("results/tables/{task}.{ext}", task=list(config["tasks"]), ext=["csv", "md"])


def run_inputs(wildcards):
    inputs = {
        "data": f"results/data/{wildcards.dataset}.h5ad",
        "split": f"results/splits/{wildcards.task}/{wildcards.dataset}/seed{wildcards.seed}.tsv",
    }
    if registry.get(wildcards.model).needs_checkpoint:
        inputs["checkpoint"] = CHECKPOINT
    return inputs
