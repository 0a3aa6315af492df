"""Adding a model is one new file: the next workflow run puts it in the table, with no other edit."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]

NEW_MODEL = '''
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
'''


def test_a_new_file_in_benchmarks_models_reaches_the_table(tmp_path):
    repo = tmp_path / "repo"
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    (repo / "benchmarks" / "models" / "first_label.py").write_text(NEW_MODEL)

    config = yaml.safe_load((ROOT / "tests" / "workflow_config.yaml").read_text())
    config["tasks"] = {"annotation": {**config["tasks"]["annotation"], "datasets": ["sim_pbmc"]}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}  # the copy's packages first
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(tmp_path / "run"),
               "--configfile", str(tmp_path / "config.yaml"), "--cores", "2"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    table = pd.read_csv(tmp_path / "run" / "results" / "tables" / "annotation.csv")
    row = table[table["model"] == "first_label"]
    assert len(row) == 1 and row["kind"].item() == "control" and 0 <= row["accuracy_mean"].item() <= 1
