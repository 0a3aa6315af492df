"""The checks of a workflow config, run before the workflow plans any job.

`check_schema` holds the config to its JSON schema (workflow/schemas/config.schema.yaml),
which refuses unknown keys and wrong types, and says what is wrong in one line.
`check_config` checks the names the schema cannot know: tasks, datasets, models,
settings and their split fractions, each model's options (names and types, as the
model declares them), the corpus and the interaction network; and it resolves the
library's own sections, `celllm` and `ppi.graphmae`, into the library's config
objects with the library's defaults (`LibraryConfigs`). Every rule reads those
objects, never the raw keys. So `snakemake -n` catches a misspelt key or name;
every problem is one InputError naming its key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from benchmarks import registry
from benchmarks.tasks import TASKS, task_settings
from celllm.config import CellLMConfig
from celllm.errors import InputError
from celllm.ppi.config import GraphMAEConfig

MOVED = {("pretrain", "celllm"): "celllm"}  # keys of earlier configs -> where they live now


@dataclass(frozen=True)
class LibraryConfigs:
    """The library configs a workflow config holds, resolved once with the library's defaults."""

    celllm: CellLMConfig  # config `celllm`: the CellLM every pretraining of the workflow trains (ablations change it)
    graphmae: GraphMAEConfig  # config `ppi.graphmae`: the gene embeddings' GraphMAE
    block_cells: int  # config `embed.block_cells`: the cells an embedding job embeds at once


def check_schema(config: dict, schema_path) -> None:
    """InputError, in one line naming the key, for the first way `config` breaks its JSON schema."""
    import yaml

    for (section, key), now in MOVED.items():
        if key in (config.get(section) or {}):
            raise InputError(f"config: {section}.{key}: this section is now the top-level `{now}:`; move it there")
    schema = yaml.safe_load(open(schema_path))
    errors = sorted(_strict_validator()(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        error = errors[0]
        where = ".".join(map(str, error.absolute_path)) or "top level"
        raise InputError(f"config: {where}: {error.message}")


@lru_cache(maxsize=1)
def _strict_validator():
    """JSON Schema 2020-12 with "integer" meaning a YAML integer: the standard counts 1.0 as one, but a seed
    or a cell count of 3000.0 crashes the job that uses it (and `true` is no number, nor `.inf`/`.nan`)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    checker = checker.redefine(
        "number", lambda _, value: isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    )
    return jsonschema.validators.extend(base, type_checker=checker)


def known_datasets() -> set[str]:
    """Datasets some rule of the workflow can make: the paper's real ones and the demo's."""
    from ingest.catalog import CATALOG
    from ingest.demo import SIMULATED
    from ingest.pbmc import DATASET as PBMC68K

    return {*CATALOG, *SIMULATED.values(), PBMC68K}


def known_networks() -> set[str]:
    """Interaction tables (results/data/{name}.tsv) some rule can make."""
    from ingest.catalog import STRING_EDGES
    from ingest.demo import SIMULATED_PPI

    return {STRING_EDGES, SIMULATED_PPI}


def dataset_labels() -> dict[str, tuple[str, ...]]:
    """What a task can predict from each dataset some rule makes (.obs columns, or ln_ic50 of a response table)."""
    from ingest.catalog import CATALOG
    from ingest.demo import SIMULATED_LABELS
    from ingest.pbmc import DATASET as PBMC68K
    from ingest.pbmc import LABELS as PBMC68K_LABELS

    return {**{name: entry.labels for name, entry in CATALOG.items()}, **SIMULATED_LABELS, PBMC68K: PBMC68K_LABELS}


def task_models(config: dict, task: str) -> list[str]:
    """The task's configured models, or every registered model that supports it (those of the
    authors' released checkpoint only with `released: true`)."""
    from benchmarks.pretrainings import RELEASED

    chosen = config["tasks"][task].get("models")
    if chosen:
        return list(chosen)
    return [m for m in registry.models_for(task) if config.get("released") or registry.get(m).pretraining != RELEASED]


def _names(kind: str, given, known, where: str, exists: Callable[[str], bool] = lambda name: False) -> None:
    unknown = [name for name in given if name not in known and not exists(name)]
    if unknown:
        raise InputError(f"config: {where}: unknown {kind} '{unknown[0]}' (known: {', '.join(sorted(known))})")


def check_config(
    config: dict, dataset_exists: Callable[[str], bool] = lambda name: False, network_exists: Callable[[str], bool] = lambda name: False
) -> LibraryConfigs:
    """The library configs of `config`; InputError for the first name or option the workflow cannot use.

    `dataset_exists(name)` / `network_exists(name)` accept datasets and networks that no
    rule makes but that a user has put in results/data/ by hand.
    """
    from benchmarks.pretrainings import RELEASED

    _names("task", config["tasks"], TASKS, "tasks")
    datasets, labels = known_datasets(), dataset_labels()
    for task, spec in config["tasks"].items():
        where = f"tasks.{task}"
        _names("dataset", spec["datasets"], datasets, f"{where}.datasets", dataset_exists)
        target = TASKS[task].target
        for name in spec["datasets"]:  # a dataset put in place by hand is checked when its job reads it
            if name in labels and target not in labels[name]:
                raise InputError(
                    f"config: {where}.datasets: '{name}' has no '{target}' for task '{task}' to predict "
                    f"(it has: {', '.join(labels[name]) or 'no labels'})"
                )
        for name in spec.get("models") or []:
            try:
                model = registry.get(name)
            except KeyError:
                raise InputError(f"config: {where}.models: unknown model '{name}' (registered: {', '.join(registry.discover())})") from None
            if not model.supports(task):
                raise InputError(
                    f"config: {where}.models: model '{name}' does not support task '{task}' (its tasks: {', '.join(model.tasks)})"
                )
            if model.pretraining == RELEASED and not config.get("released"):
                raise InputError(
                    f"config: {where}.models: model '{name}' needs the authors' released checkpoint: set `released: true` (README)"
                )
        try:
            task_settings(task, spec)
        except ValueError as exc:
            raise InputError(f"config: {where}.settings: {exc}") from None
        supported = registry.models_for(task)  # options may wait for a model the config leaves out for now
        for name, options in (spec.get("options") or {}).items():
            if name not in supported:
                raise InputError(f"config: {where}.options: '{name}' is not a model of task '{task}' (its models: {', '.join(supported)})")
            try:
                registry.get(name).resolve_options(task, options)
            except InputError as exc:
                raise InputError(f"config: {where}.options.{name}: {exc}") from None
    models = registry.discover()
    figures = config.get("figures") or {}
    for key, names in (("focus", [figures.get("focus")]), ("scatter", figures.get("scatter") or [])):
        unknown = [n for n in names if n is not None and n not in models]
        if unknown:
            raise InputError(f"config: figures.{key}: unknown model '{unknown[0]}' (registered: {', '.join(models)})")
    pretrain = config["pretrain"]
    _names("dataset", pretrain["corpus"], datasets, "pretrain.corpus", dataset_exists)
    from benchmarks.pretrainings import RELEASED_CHECKPOINT, TRAINED_HERE, checkpoint_folder

    if RELEASED_CHECKPOINT in {checkpoint_folder(pretrain["name"], p) for p in TRAINED_HERE}:  # one folder for two checkpoints
        raise InputError(
            f"config: pretrain.name: '{pretrain['name']}' would share results/pretrain/{RELEASED_CHECKPOINT} with the "
            "imported released checkpoint; choose another name"
        )
    celllm = CellLMConfig.from_dict(config.get("celllm") or {}, "config: celllm")
    ppi = config["ppi"]
    _names("interaction network", [ppi["edges"]], known_networks(), "ppi.edges", network_exists)
    from ingest.catalog import CATALOG
    from ingest.ledger import LossPolicy

    data = config.get("data") or {}
    _names("real dataset", (data.get("accept") or {}), CATALOG, "data.accept")
    LossPolicy.from_config(data)
    try:
        graphmae = GraphMAEConfig.from_dict(ppi.get("graphmae") or {})
    except ValueError as exc:
        raise InputError(f"config: ppi.graphmae: {exc}") from None
    return LibraryConfigs(celllm=celllm, graphmae=graphmae, block_cells=_embed_block(config))


def _embed_block(config: dict) -> int:
    """The configured block of the embedding jobs, which every shard (embed.shard_cells) must fill whole: a shard
    is then embedded in the blocks and batches of the single job (celllm/shards.py). The released encoder's
    blocks are whole batches of RELEASED_BATCH cells, so with `released: true` the block must be too."""
    from celllm.embed import BLOCK_CELLS
    from celllm.released import RELEASED_BATCH

    embed = config.get("embed") or {}
    block, shard = embed.get("block_cells", BLOCK_CELLS), embed.get("shard_cells")
    if shard is not None and shard % block:
        raise InputError(
            f"config: embed.shard_cells: {shard} is not a whole number of blocks of {block} cells (embed.block_cells); "
            f"take {max(block, shard // block * block)} or {-(-shard // block) * block}"
        )
    if config.get("released") and block % RELEASED_BATCH:
        raise InputError(
            f"config: embed.block_cells: {block} is not a whole number of the released encoder's batches of {RELEASED_BATCH} cells"
        )
    return block
