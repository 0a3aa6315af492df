"""A strict workflow config: a misspelt key, name or option stops the run before any job.

The schema (workflow/schemas/config.schema.yaml) refuses unknown keys and wrong types; the
library's check (benchmarks.config.check_config) refuses names and options the workflow cannot
use. Both run in-process here; one `snakemake -n` shows the workflow calls them first.
"""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from benchmarks.config import check_config, check_schema
from celllm.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
BASE = yaml.safe_load((ROOT / "tests" / "workflow_config.yaml").read_text())


def _edited(path: str, value):
    """BASE with the key at dotted `path` set to `value` (a new key where it does not exist)."""
    config = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


def _rename(path: str, new: str):
    config = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[new] = node.pop(last)
    return config


SCHEMA_CASES = [
    ("seedz", _rename("seeds", "seedz"), "'seedz' was unexpected"),
    ("thread", _rename("threads", "thread"), "'thread' was unexpected"),
    ("simulation.corpus_cell", _rename("simulation.corpus_cells", "corpus_cell"), "'corpus_cell' was unexpected"),
    ("pretrain.corpus_names", _edited("pretrain.corpus_names", ["sim_pretrain"]), "'corpus_names' was unexpected"),
    ("ppi.min_scores", _rename("ppi.min_score", "min_scores"), "'min_scores' was unexpected"),
    ("tasks.annotation.dataset", _rename("tasks.annotation.datasets", "dataset"), "'datasets' is a required property"),
    ("tasks.annotation.option", _edited("tasks.annotation.option", {}), "'option' was unexpected"),
    ("seeds repeated", _edited("seeds", [0, 0]), "has non-unique elements"),
    ("threads as text", _edited("threads", "2"), "'2' is not of type 'integer'"),
    ("fraction above 1", _edited("tasks.annotation.settings", {"standard": {"test": 1.5}}), "1.5 is greater than or equal to"),
    ("data.max_losses", _edited("data", {"max_losses": 0.05}), "'max_losses' was unexpected"),
    (
        "accepted loss without a reason",
        _edited("data", {"accept": {"ccle": {"drug_structure": {"max_loss": 0.1}}}}),
        "'reason' is a required property",
    ),
    # names that become paths (issue 21): never '.', '..' or a path; no list names one twice; seeds numpy can take
    ("pretraining named '..'", _edited("pretrain.name", ".."), "pretrain.name: '..' does not match"),
    ("pretraining named '.'", _edited("pretrain.name", "."), "pretrain.name: '.' does not match"),
    (
        "a dataset outside results",
        _edited("tasks.annotation.datasets", ["../../../outside"]),
        "tasks.annotation.datasets.0: '../../../outside' does not match",
    ),
    ("a corpus dataset with a slash", _edited("pretrain.corpus", ["a/b"]), "pretrain.corpus.0: 'a/b' does not match"),
    ("a network path", _edited("ppi.edges", "/etc/passwd"), "ppi.edges: '/etc/passwd' does not match"),
    ("a dataset twice", _edited("tasks.annotation.datasets", ["sim_pbmc", "sim_pbmc"]), "has non-unique elements"),
    ("a seed of 2^32", _edited("seeds", [4294967296]), "4294967296 is greater than the maximum of 4294967295"),
    ("shards of no cells", _edited("embed.shard_cells", 0), "embed.shard_cells: 0 is less than the minimum of 1"),
    ("shards of fewer than no cells", _edited("embed.shard_cells", -384), "embed.shard_cells: -384 is less than the minimum of 1"),
    ("a misspelt shard size", _rename("embed.shard_cells", "shard_size"), "'shard_size' was unexpected"),
    # what a job asks a scheduler for (issue 25)
    ("no pretraining processes", _edited("pretrain.processes_per_node", 0), "pretrain.processes_per_node: 0 is less than the minimum of 1"),
    ("nodes as text", _edited("pretrain.nodes", "2"), "pretrain.nodes: '2' is not of type 'integer'"),
    ("a misspelt job kind", _edited("resources", {"pretrian": {"gpu": 1}}), "resources: Additional properties are not allowed ('pretrian'"),
    ("a misspelt resource", _edited("resources", {"model": {"gpus": 1}}), "resources.model: Additional properties are not allowed ('gpus'"),
    ("memory of no MB", _edited("resources", {"ppi": {"mem_mb": 0}}), "resources.ppi.mem_mb: 0 is less than the minimum of 1"),
]

# YAML numbers the standard schema would take for integers but a job cannot (Snakemake's own validation takes them)
STRICT_CASES = [
    ("a float seed", _edited("seeds", [0, 1.0]), "seeds.1: 1.0 is not of type 'integer'"),
    ("a float cell count", _edited("simulation.corpus_cells", 3000.0), "simulation.corpus_cells: 3000.0 is not of type 'integer'"),
    ("threads true", _edited("threads", True), "threads: True is not of type 'integer'"),
    ("an infinite fraction", _edited("tasks.annotation.settings", {"standard": {"test": float("nan")}}), "nan is not of type 'number'"),
]

CHECK_CASES = [
    (
        "option of a misspelt model",
        _edited("tasks.drug_response.options.celllm_prob", {"epochs": 3}),
        "tasks.drug_response.options: 'celllm_prob' is not a model of task 'drug_response'",
    ),
    (
        "option epoch",
        _edited("tasks.drug_response.options.celllm_probe", {"epoch": 3}),
        "tasks.drug_response.options.celllm_probe: unknown option 'epoch' for model 'celllm_probe'",
    ),
    (
        "option of the wrong type",
        _edited("tasks.drug_response.options.celllm_probe", {"epochs": "3"}),
        "option 'epochs' must be a positive integer for model 'celllm_probe'",
    ),
    (
        "option where the model takes none",
        _edited("tasks.drug_sensitivity.options", {"logreg_l1": {"C": 1.0}}),
        "model 'logreg_l1' takes no options on task 'drug_sensitivity'",
    ),
    ("corpus nope", _edited("pretrain.corpus", ["nope"]), "pretrain.corpus: unknown dataset 'nope'"),
    ("unknown task dataset", _edited("tasks.annotation.datasets", ["zheng86k"]), "tasks.annotation.datasets: unknown dataset 'zheng86k'"),
    ("unknown model", _edited("tasks.annotation.models", ["logreg_l2"]), "tasks.annotation.models: unknown model 'logreg_l2'"),
    ("model of another task", _edited("tasks.annotation.models", ["drug_mean"]), "model 'drug_mean' does not support task 'annotation'"),
    (
        "cell lines to annotate",
        _edited("tasks.annotation.datasets", ["sim_cell_lines"]),
        "tasks.annotation.datasets: 'sim_cell_lines' has no 'cell_type' for task 'annotation' to predict (it has: ln_ic50)",
    ),
    (
        "a pretraining corpus as drug sensitivity",
        _edited("tasks.drug_sensitivity.datasets", ["panglaodb_human"]),
        "'panglaodb_human' has no 'response' for task 'drug_sensitivity'",
    ),
    ("single cells as drug response", _edited("tasks.drug_response.datasets", ["gse149383"]), "'gse149383' has no 'ln_ic50'"),
    ("unknown setting", _edited("tasks.drug_response.settings", {"lukewarm": None}), "unknown setting(s) lukewarm"),
    (
        "fractions above 1",
        _edited("tasks.annotation.settings", {"standard": {"val": 0.5, "test": 0.6}}),
        "split fractions val 0.5, test 0.6 sum to 1.1",
    ),
    ("unknown task", _edited("tasks.annotaton", {"datasets": ["sim_pbmc"]}), "tasks: unknown task 'annotaton'"),
    ("encoder dim as text", _edited("celllm.encoder.dim", "64"), "encoder option 'dim' must be an integer, not '64'"),
    ("unknown tokens option", _edited("celllm.tokens.max_length", 300), "unknown tokens option(s): max_length"),
    ("graphmae epochs negative", _edited("ppi.graphmae.epochs", -5), "ppi.graphmae: GraphMAE option 'epochs' must be >= 1"),
    ("unknown network", _edited("ppi.edges", "string"), "ppi.edges: unknown interaction network 'string'"),
    (
        "released model without released",
        _edited("tasks.annotation.models", ["celllm_released_probe"]),
        "model 'celllm_released_probe' needs the authors' released checkpoint: set `released: true`",
    ),
    ("unknown focus model", _edited("figures.focus", "celllm_prob"), "figures.focus: unknown model 'celllm_prob'"),
    (
        "shards of part of a block",
        _edited("embed.shard_cells", 1000),
        "embed.shard_cells: 1000 is not a whole number of blocks of 128 cells (embed.block_cells); take 896 or 1024",
    ),
    (
        "shards of part of the default block",
        _edited("embed", {"shard_cells": 100000}),
        "embed.shard_cells: 100000 is not a whole number of blocks of 8192 cells (embed.block_cells); take 98304 or 106496",
    ),
    (
        "blocks of part of a released batch",
        {**_edited("embed", {"shard_cells": 200, "block_cells": 100}), "released": True},
        "embed.block_cells: 100 is not a whole number of the released encoder's batches of 32 cells",
    ),
    ("unknown scatter model", _edited("figures.scatter", ["drug_mean", "deepcdr"]), "figures.scatter: unknown model 'deepcdr'"),
    (
        "loss accepted at a misspelt step",
        _edited("data", {"accept": {"ccle": {"drug_structures": {"max_loss": 0.1, "reason": "r"}}}}),
        "data.accept.ccle.drug_structures: unknown step 'drug_structures'",
    ),
    (
        "loss accepted for an unknown dataset",
        _edited("data", {"accept": {"gdsc": {"drug_structure": {"max_loss": 0.1, "reason": "r"}}}}),
        "data.accept: unknown real dataset 'gdsc'",
    ),
    (
        "split fractions of the zero-shot task",
        _edited("tasks.embedding", {"datasets": ["sim_pbmc"], "settings": {"zero_shot": {"test": 0.2}}}),
        "tasks.embedding.settings: this setting trains nothing and has no split fractions",
    ),
]


def test_the_shipped_configs_pass():
    for path in ("config/config.yaml", "config/paper.yaml", "tests/workflow_config.yaml"):
        config = yaml.safe_load((ROOT / path).read_text())
        check_schema(config, SCHEMA)
        validate(config, SCHEMA)
        check_config(config)


@pytest.mark.parametrize("config,message", [c[1:] for c in STRICT_CASES], ids=[c[0] for c in STRICT_CASES])
def test_integers_are_integers_and_numbers_finite(config, message):
    with pytest.raises(InputError) as error:
        check_schema(config, SCHEMA)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_celllm_section_is_resolved_once_with_the_library_defaults():
    """What every rule reads (common.smk: CELLLM) is the library's CellLMConfig: the configured options over
    the library's defaults. A config without the section gets the defaults, through Snakemake's own
    validation (which fills in the schema's defaults, so the schema must not carry other ones)."""
    from celllm.config import CellLMConfig
    from celllm.ppi.graphmae import GraphMAEConfig

    resolved = check_config(copy.deepcopy(BASE))
    assert resolved.celllm == CellLMConfig.from_dict(BASE["celllm"])
    assert resolved.celllm.encoder.dim == BASE["celllm"]["encoder"]["dim"] == 16
    assert resolved.celllm.pretrain.lr == CellLMConfig().pretrain.lr  # not configured: the library's default
    assert resolved.graphmae == GraphMAEConfig.from_dict(BASE["ppi"]["graphmae"])

    bare = copy.deepcopy(BASE)
    del bare["celllm"], bare["ppi"]["graphmae"]
    validate(bare, SCHEMA)
    resolved = check_config(bare)
    assert resolved.celllm == CellLMConfig() and resolved.graphmae == GraphMAEConfig()


def test_the_old_place_of_the_celllm_section_is_named():
    config = copy.deepcopy(BASE)
    config["pretrain"]["celllm"] = config.pop("celllm")
    with pytest.raises(InputError, match=r"^config: pretrain.celllm: this section is now the top-level `celllm:`; move it there$"):
        check_schema(config, SCHEMA)


def test_a_pretraining_named_like_the_released_checkpoint_is_refused():
    with pytest.raises(InputError, match="pretrain.name: 'celllm_released' would share results/pretrain/celllm_released"):
        check_config(_edited("pretrain.name", "celllm_released"))


@pytest.mark.parametrize("config,message", [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES])
def test_the_schema_refuses(config, message):
    with pytest.raises(InputError) as error:
        check_schema(config, SCHEMA)
    assert message in str(error.value) and str(error.value).startswith("config: ") and "\n" not in str(error.value)
    with pytest.raises(WorkflowError):  # Snakemake's own validation agrees
        validate(config, SCHEMA)


@pytest.mark.parametrize("config,message", [c[1:] for c in CHECK_CASES], ids=[c[0] for c in CHECK_CASES])
def test_the_names_and_options_are_checked(config, message):
    check_schema(config, SCHEMA)  # the schema cannot see these
    with pytest.raises(InputError) as error:
        check_config(config)
    assert message in str(error.value) and str(error.value).startswith("config: ") and "\n" not in str(error.value)


def test_a_dataset_put_in_place_by_hand_is_accepted():
    config = _edited("tasks.annotation.datasets", ["my_cells"])
    check_config(config, dataset_exists=lambda name: name == "my_cells")


def test_snakemake_stops_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_edited("tasks.drug_response.options.celllm_probe", {"epoch": 3})))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "-n",
        "--configfile",
        str(bad),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "unknown option 'epoch' for model 'celllm_probe'" in output and "Job stats" not in output


def test_options_may_wait_for_a_model_the_config_leaves_out():
    """config/paper.yaml sets the GIN options of every drug-response model; a run may pick fewer models."""
    config = _edited("tasks.drug_response.models", ["drug_mean"])
    assert "celllm_probe" in config["tasks"]["drug_response"]["options"]
    check_config(config)


def test_the_declared_labels_are_what_the_simulator_writes(tmp_path):
    """The config check trusts SIMULATED_LABELS; compare them with the demo's datasets as written (small sizes)."""
    import anndata as ad
    import pandas as pd

    from ingest.demo import SIMULATED, SIMULATED_LABELS, write_simulated_datasets
    from tests.fixtures.data import SIM_GENES

    outputs = {key: str(tmp_path / f"{name}.h5ad") for key, name in SIMULATED.items()}
    outputs.update(drug_response=str(tmp_path / "response.tsv"), ppi=str(tmp_path / "ppi.tsv"))
    write_simulated_datasets(SIM_GENES, outputs, corpus_cells=60, pbmc_cells=60, drug_sensitivity_cells=40, cell_lines=12)
    assert set(SIMULATED_LABELS) == set(SIMULATED.values())
    for key, name in SIMULATED.items():
        columns = set(ad.read_h5ad(outputs[key]).obs.columns)
        if key == "cell_lines":
            columns |= set(pd.read_csv(outputs["drug_response"], sep="\t").columns)
        assert set(SIMULATED_LABELS[name]) <= columns, (name, columns)
