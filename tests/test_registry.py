"""Every registered model, on every task it declares, on tiny data: the run record contract."""

import json

import pandas as pd
import pytest

from benchmarks import registry
from benchmarks.protocol import stratified_split, write_split
from benchmarks.tasks import TASKS
from benchmarks.tasks.classification import run_classification
from celllm.io import write_h5ad
from tests.conftest import make_counts

RECORD_KEYS = {"task", "setting", "dataset", "simulated", "model", "kind", "seed", "n_train", "n_val", "n_test", "metrics", "wall_time_s", "provenance"}
CASES = [(name, task) for name, spec in registry.discover().items() for task in spec.tasks]


def test_every_model_has_metadata():
    models = registry.discover()
    assert {"celllm", "baseline", "control"} <= {spec.kind for spec in models.values()}
    for name, spec in models.items():
        assert spec.summary and spec.tasks and set(spec.tasks) <= set(TASKS), name


@pytest.mark.parametrize("model,task", CASES, ids=[f"{m}-{t}" for m, t in CASES])
def test_model_writes_a_valid_run_record(model, task, tmp_path, checkpoint):
    column = TASKS[task]
    data = make_counts(n_cells=60, n_genes=30, labels=("a", "b", "c"), label_column=column)
    write_h5ad(data, tmp_path / "tiny.h5ad")
    write_split(tmp_path / "split.tsv", data.obs_names, stratified_split(data.obs[column], seed=0))
    context = registry.ModelContext(checkpoint=checkpoint, threads=1)
    out = tmp_path / "run"
    run_classification(task, tmp_path / "tiny.h5ad", tmp_path / "split.tsv", model, 0, out, context)

    record = json.loads((out / "metrics.json").read_text())
    assert RECORD_KEYS <= set(record) and record["model"] == model and record["task"] == task
    assert record["n_train"] + record["n_val"] + record["n_test"] == 60
    assert all(0.0 <= value <= 1.0 for value in record["metrics"].values())
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == record["n_test"] and set(predictions["predicted"]) <= {"a", "b", "c"}
    if registry.get(model).needs_checkpoint:
        assert len(record["provenance"]["checkpoint_sha256"]) == 64


def test_an_unknown_model_is_named():
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        registry.get("nope")
