"""A run's files (benchmarks/records.py): what the run writes, scoring reads back exactly."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.records import read_array, read_json, read_run, write_metrics, write_run
from benchmarks.tasks import get_task
from celllm.errors import InputError

AWKWARD_LABELS = ["NA", "None", "nan", "1.0", " spaced ", 'with "quotes", and a comma', "été", "sensitive"]


def _floats(rng, n):
    """Floats of every scale, float32 values among them, as models give."""
    return np.concatenate([rng.normal(size=n) * 10.0 ** rng.integers(-12, 12, n), rng.random(n).astype(np.float32), [0.1, 1 / 3, -0.0]])


def test_predictions_and_arrays_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(0)
    values = _floats(rng, 500)
    labels = np.array(AWKWARD_LABELS)[rng.integers(0, len(AWKWARD_LABELS), len(values))]
    embedding = rng.normal(size=(len(values), 3)).astype(np.float32)
    record = {"task": "drug_response", "seed": 0, "options": {}, "wall_time_s": 1.0}
    write_run(tmp_path, record, pd.DataFrame({"id": labels, "true": labels, "value": values}), {"embedding": embedding})
    back, predictions, arrays = read_run(tmp_path, numeric=("value",), arrays=("embedding",))
    assert back == record
    assert predictions["id"].tolist() == labels.tolist() and predictions["true"].tolist() == labels.tolist()  # 'NA' stays text
    np.testing.assert_array_equal(predictions["value"].to_numpy(), values)
    assert predictions["value"].dtype == np.float64 and (np.signbit(predictions["value"]) == np.signbit(values)).all()
    assert arrays["embedding"].dtype == np.float32 and np.array_equal(arrays["embedding"], embedding)


@pytest.mark.parametrize("task_name", ["drug_response", "drug_sensitivity"])
def test_scoring_the_files_gives_the_numbers_of_scoring_in_memory(task_name, tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    if task_name == "drug_response":
        truth = rng.normal(3, 2, n)
        predictions = pd.DataFrame(
            {"cell_line": rng.choice(["L1", "L2", "NA"], n), "drug": rng.choice(["D1", "D2", "D3"], n), "true": truth}
        ).assign(predicted=truth + rng.normal(0, 1, n).astype(np.float32))
    else:
        truth = rng.choice(["sensitive", "resistant"], n)
        proba = rng.random(n).astype(np.float32).astype(np.float64)  # a float32 model's probabilities, widened as the run does
        predicted = np.where(proba > 0.5, "sensitive", "resistant")
        predictions = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "true": truth, "predicted": predicted, "score_sensitive": proba})
    task = get_task(task_name)
    in_memory = task.score(predictions, {}, 0)
    write_run(tmp_path, {"task": task_name, "seed": 0, "options": {}}, predictions)
    _, back, arrays = read_run(tmp_path, task.numeric_columns, task.arrays)
    assert task.score(back, arrays, 0) == in_memory


def test_metrics_json_is_the_run_record_with_the_scores_before_the_options(tmp_path):
    record = {"task": "t", "seed": 1, "n_test": 3, "options": {"a": 1}, "wall_time_s": 2.0, "provenance": {}}
    scored = write_metrics(tmp_path, record, {"accuracy": 0.5}, {"confusion": {"labels": [], "matrix": []}})
    assert list(scored) == ["task", "seed", "n_test", "metrics", "confusion", "options", "wall_time_s", "provenance"]
    assert json.loads((tmp_path / "metrics.json").read_text()) == scored


def test_bad_run_files_are_named(tmp_path):
    (tmp_path / "run.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"run\.json: a run record must be a JSON object"):
        read_json(tmp_path / "run.json")
    pd.DataFrame({"true": ["1.5", "oops"]}).to_csv(tmp_path / "predictions.csv", index=False)
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(InputError, match=r"predictions\.csv: column 'true' holds a value that is not a number"):
        read_run(tmp_path, numeric=("true",))
    np.save(tmp_path / "embedding.npy", np.zeros((3, 2)))
    with pytest.raises(InputError, match=r"embedding\.npy: the array has shape \(3, 2\); expected one row per cell \(4\)"):
        read_array(tmp_path / "embedding.npy", 4)
