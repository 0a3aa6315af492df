"""Adding a task is one new file in benchmarks/tasks/: the workflow splits, runs, tables and draws it."""

import pandas as pd

from tests.fixtures.repo import copy_project, run_copy, workflow_config

NEW_TASK = """
from benchmarks.tasks.cells import CellClassification
from benchmarks.tasks.spec import Setting

# annotation with half of the cells held out: a variant of annotation, so its models run here too
TASK = CellClassification(
    "half_held_out",
    target="cell_type",
    settings={"half": Setting(val=0.1, test=0.5, label="half of the cells held out")},
    headline=["macro_f1", "accuracy"],
    figure_metrics=["macro_f1"],
    title="Annotation with half of the cells held out",
    models_of="annotation",
)
"""


def test_a_new_file_in_benchmarks_tasks_reaches_a_table_and_a_figure(tmp_path):
    repo = copy_project(tmp_path / "repo")
    (repo / "benchmarks" / "tasks" / "half_held_out.py").write_text(NEW_TASK)
    config = workflow_config()
    config["tasks"] = {"half_held_out": {"datasets": ["sim_pbmc"], "models": ["logreg_l1", "majority"]}}

    result = run_copy(repo, config, tmp_path / "run", "results/tables/half_held_out.csv", "results/figures/half_held_out.png")
    assert result.returncode == 0, result.stderr[-3000:]

    run = tmp_path / "run" / "results"
    table = pd.read_csv(run / "tables" / "half_held_out.csv")
    assert sorted(table["model"]) == ["logreg_l1", "majority"] and set(table["setting"]) == {"half"}
    assert table["macro_f1_mean"].between(0, 1).all() and (table["n_seeds"] == len(config["seeds"])).all()
    split = pd.read_csv(run / "splits" / "half_held_out" / "sim_pbmc" / "half" / "seed0.tsv", sep="\t")
    assert abs((split["split"] == "test").mean() - 0.5) < 0.02  # the new setting's fractions were used
    assert (run / "figures" / "half_held_out.png").stat().st_size > 0
