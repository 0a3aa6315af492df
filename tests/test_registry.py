"""Every registered model, on every task and setting it declares, on tiny data: the run record contract."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import registry
from benchmarks.runner import make_split, run_task
from benchmarks.tasks import TASKS, get_task
from celllm.io import write_h5ad
from tests.fixtures.data import make_counts

RECORD_KEYS = {"task", "setting", "dataset", "simulated", "model", "kind", "seed", "metrics", "wall_time_s", "provenance"}
CASES = [(name, task, setting) for name, spec in registry.discover().items() for task in spec.tasks for setting in TASKS[task].settings]
METRICS = {
    "annotation": {"accuracy", "macro_f1"},
    "drug_sensitivity": {"f1", "auroc", "aupr", "accuracy"},
    "drug_response": {"rmse", "mae", "r2", "pearson", "spearman", "per_drug_pearson"},
    "embedding": {"ari", "nmi", "asw_label", "knn_accuracy", "knn_macro_f1", "bio", "overall"},
}
FAST_OPTIONS = {"epochs": 3}  # the contract, not the fit, is under test


def test_every_model_has_metadata():
    models = registry.discover()
    assert {"celllm", "baseline", "control"} <= {spec.kind for spec in models.values()}
    for name, spec in models.items():
        assert spec.summary and spec.tasks and set(spec.tasks) <= set(TASKS), name


def test_every_task_has_celllm_two_baselines_and_a_control():
    for task in TASKS:
        kinds = [registry.get(m).kind for m in registry.models_for(task)]
        assert kinds.count("celllm") >= 1 and kinds.count("baseline") >= 2 and kinds.count("control") >= 1, task


@pytest.fixture(scope="module")
def cell_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cells")
    paths = {}
    for task in ("annotation", "drug_sensitivity", "embedding"):
        labels = ("resistant", "sensitive") if task == "drug_sensitivity" else ("a", "b", "c")
        write_h5ad(make_counts(n_cells=80, n_genes=30, labels=labels, label_column=get_task(task).target), folder / f"{task}.h5ad")
        paths[task] = {"data": folder / f"{task}.h5ad"}
    return paths


@pytest.mark.parametrize("model,task,setting", CASES, ids=[f"{m}-{t}-{s}" for m, t, s in CASES])
def test_model_writes_a_valid_run_record(model, task, setting, tmp_path, checkpoint, cell_inputs, drug_response_files):
    if "drugs" in get_task(task).run_inputs:
        inputs = dict(zip(("data", "response", "drugs"), drug_response_files))
    else:
        inputs = cell_inputs[task]
    split = make_split(task, setting, 0, inputs, tmp_path / "split.tsv") if get_task(task).needs_split else None
    spec = registry.get(model)
    options = {k: v for k, v in FAST_OPTIONS.items() if k in spec.options} if task in spec.option_tasks else {}
    # every pretraining variant is stood in for by the same tiny checkpoint here
    network = drug_response_files[3] if spec.needs_network else None
    context = registry.ModelContext(checkpoint=checkpoint, network=network, threads=1, options=options)
    out = tmp_path / "run"
    run_task(task, setting, inputs, tmp_path / "split.tsv" if split is not None else None, model, 0, out, context)

    record = json.loads((out / "metrics.json").read_text())
    assert RECORD_KEYS <= set(record) and (record["model"], record["task"], record["setting"]) == (model, task, setting)
    assert METRICS[task] <= set(record["metrics"])
    values = [v for v in record["metrics"].values() if v is not None]
    assert all(np.isfinite(values))
    predictions = pd.read_csv(out / "predictions.csv")
    if split is None:  # zero-shot: every cell is scored, nothing is predicted
        assert record["n_all"] == len(predictions) == 80
    else:
        assert (record["n_train"], record["n_val"], record["n_test"]) == tuple(int((split == p).sum()) for p in ("train", "val", "test"))
        assert len(predictions) == record["n_test"] and predictions["predicted"].notna().all()
    if registry.get(model).needs_checkpoint:
        assert len(record["provenance"]["checkpoint_sha256"]) == 64
    run = json.loads((out / "run.json").read_text())  # the model run's own record: no metric in it
    assert "metrics" not in run and {k: record[k] for k in run} == run
    if task == "embedding":  # the embedding it was scored on, saved by the run
        assert np.load(out / "embedding.npy").shape == (80, record["embedding_dims"])


def test_an_unknown_model_is_named():
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        registry.get("nope")


def test_a_model_asking_for_an_unknown_pretraining_is_refused():
    with pytest.raises(ValueError, match="pretraining must be one of pretrained"):
        registry.register("bad", kind="celllm", tasks=("annotation",), summary="x", pretraining="mystery")


def test_declared_options_are_checked_and_completed_with_their_defaults():
    from celllm.errors import InputError

    finetune = registry.get("celllm_finetune")
    assert finetune.resolve_options("annotation", {"epochs": 3}) == {"epochs": 3, "lr": 1e-4, "batch_size": 32, "patience": 4}
    assert finetune.resolve_options("annotation", {"lr": 1})["lr"] == 1  # an integer is a fine number
    with pytest.raises(InputError, match=r"unknown option 'epoch' for model 'celllm_finetune' \(known: epochs, lr, batch_size, patience\)"):
        finetune.resolve_options("annotation", {"epoch": 3})
    for bad in ("3", 2.5, -1, 0, True):
        with pytest.raises(InputError, match="option 'epochs' must be a positive integer for model 'celllm_finetune'"):
            finetune.resolve_options("annotation", {"epochs": bad})
    probe = registry.get("celllm_probe")
    assert probe.resolve_options("annotation", {}) == {} and probe.resolve_options("drug_response", {})["epochs"] == 200
    with pytest.raises(InputError, match="model 'celllm_probe' takes no options on task 'annotation'"):
        probe.resolve_options("annotation", {"epochs": 3})
    with pytest.raises(InputError, match="model 'logreg_l1' takes no options"):
        registry.get("logreg_l1").resolve_options("annotation", {"C": 1.0})


def test_a_model_class_missing_a_method_of_its_tasks_protocol_is_refused_naming_its_file():
    class NoPredict:
        def __init__(self, seed, context): ...

        def fit(self, train, val): ...

    with pytest.raises(
        ValueError, match=r"test_registry\.py: model 'no_predict' \(NoPredict\) declares task 'annotation' but has no predict"
    ):
        registry.register("no_predict", kind="baseline", tasks=("annotation",), summary="x")(NoPredict)

    class FitsButEmbedsNothing(NoPredict):
        def predict(self, data): ...

    with pytest.raises(ValueError, match=r"has no embed: a model of that task follows benchmarks\.registry\.ZeroShotEmbedder"):
        registry.register("no_embed", kind="baseline", tasks=("annotation", "embedding"), summary="x")(FitsButEmbedsNothing)
    with pytest.raises(ValueError, match="must register a class"):
        registry.register("a_function", kind="baseline", tasks=("annotation",), summary="x")(lambda seed, context: None)
    assert not {"no_predict", "no_embed", "a_function"} & set(registry.discover())


def test_every_registered_model_follows_the_protocols_of_its_tasks():
    for name, spec in registry.discover().items():
        for task in spec.tasks:
            assert issubclass(spec.factory, registry.required_protocol(task)), (name, task)
    assert registry.required_protocol("embedding") is registry.ZeroShotEmbedder
    assert registry.required_protocol("drug_response") is registry.TrainedModel


def test_the_public_celllm_helper_is_not_taken_for_a_model():
    from benchmarks.models import celllm_common

    assert "celllm_common" in registry.HELPERS and callable(celllm_common.cell_embeddings)
    assert "celllm_common" not in registry.discover()
    with pytest.raises(KeyError, match="unknown model 'celllm_common'"):
        registry.get("celllm_common")
