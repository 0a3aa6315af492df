"""Adding a model is one new file: the next workflow run puts it in the table, with no other edit."""

import pandas as pd

from tests.fixtures.repo import copy_project, run_copy, workflow_config

NEW_MODEL = """
import numpy as np

from benchmarks.registry import register


@register("first_label", kind="control", tasks=("annotation",), summary="always the alphabetically first training label")
class FirstLabel:
    def __init__(self, seed, context):
        self.label = None

    def fit(self, train, val):
        self.label = sorted(set(train.labels))[0]

    def predict(self, data):
        return np.full(len(data), self.label)
"""


def test_a_new_file_in_benchmarks_models_reaches_the_table(tmp_path):
    repo = copy_project(tmp_path / "repo")
    (repo / "benchmarks" / "models" / "first_label.py").write_text(NEW_MODEL)

    config = workflow_config()
    config["tasks"] = {"annotation": {**config["tasks"]["annotation"], "datasets": ["sim_pbmc"]}}
    result = run_copy(repo, config, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]

    table = pd.read_csv(tmp_path / "run" / "results" / "tables" / "annotation.csv")
    row = table[table["model"] == "first_label"]
    assert len(row) == 1 and row["kind"].item() == "control" and 0 <= row["accuracy_mean"].item() <= 1
