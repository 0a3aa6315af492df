import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.aggregate import detail_markdown, load_runs, rank_models, summarise, to_markdown
from benchmarks.splits import read_split, split_units, stratified_split, write_split
from benchmarks.tasks import get_task
from celllm.errors import InputError


def test_stratified_split_is_seeded_and_keeps_rare_classes_everywhere():
    labels = np.array(["common"] * 90 + ["rare"] * 4)
    a, b, c = stratified_split(labels, 0), stratified_split(labels, 0), stratified_split(labels, 1)
    assert (a == b).all() and not (a == c).all()
    for split in ("train", "val", "test"):
        assert (labels[a == split] == "rare").sum() >= 1
    assert (a == "test").sum() == 18 + 1 and (a == "val").sum() == 9 + 1


def test_split_file_round_trip_and_errors(tmp_path):
    ids = [f"c{i}" for i in range(10)]
    split = stratified_split(["x"] * 10, 0)
    write_split(tmp_path / "s.tsv", ids, split)
    assert (read_split(tmp_path / "s.tsv", ids) == split).all()
    with pytest.raises(InputError, match="not in the split"):
        read_split(tmp_path / "s.tsv", ids + ["new"])
    with pytest.raises(InputError, match="split file not found"):
        read_split(tmp_path / "none.tsv", ids)
    pd.DataFrame({"id": ids, "split": ["train"] * 9 + ["holdout"]}).to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="train, val, test or unused"):
        read_split(tmp_path / "bad.tsv", ids)


def _record(path, model, kind, seed, accuracy):
    record = {
        "task": "annotation",
        "setting": "standard",
        "dataset": "d",
        "simulated": True,
        "model": model,
        "kind": kind,
        "seed": seed,
        "metrics": {"accuracy": accuracy, "macro_f1": accuracy / 2},
    }
    path.write_text(json.dumps(record))
    return path


def test_summary_gives_mean_and_sd_over_seeds_with_celllm_first(tmp_path):
    paths = [
        _record(tmp_path / f"{m}{s}.json", m, k, s, acc)
        for m, k, s, acc in [
            ("majority", "control", 0, 0.3),
            ("majority", "control", 1, 0.3),
            ("celllm_probe", "celllm", 0, 0.6),
            ("celllm_probe", "celllm", 1, 0.8),
        ]
    ]
    table = summarise(load_runs(paths))
    assert table["model"].tolist() == ["celllm_probe", "majority"]
    row = table.iloc[0]
    assert row["accuracy_mean"] == pytest.approx(0.7) and row["accuracy_std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert row["n_seeds"] == 2
    markdown = to_markdown(rank_models(table, "accuracy"), ["accuracy", "macro_f1"])
    assert "| 1 | celllm_probe | celllm | 0.700 ± 0.141 |" in markdown
    assert "- *celllm_probe*: this project's CellLM, frozen cell embedding" in markdown and "- *majority*" not in markdown
    details = detail_markdown(table, "More", ["macro_f1", "accuracy", "not_measured"])
    assert details.startswith("## More") and "| model | kind | macro F1 | accuracy |" in details  # only what the runs have
    assert "| celllm_probe | celllm | 0.350 ± 0.071 | 0.700 ± 0.141 |" in details


def test_tables_say_whose_weights_and_whose_recipe_each_celllm_row_is():
    """A row of the authors' weights says whether it is their recipe (issue 20: the released probe is not)."""
    from benchmarks import registry

    released = {name: spec for name, spec in registry.discover().items() if spec.pretraining == "released"}
    assert set(released) >= {"celllm_released_probe", "celllm_released_finetune", "celllm_released_tgdrp"}
    for name, spec in released.items():
        assert spec.summary.startswith("the authors' released weights"), name
        assert ("not the authors' recipe" in spec.summary) == (name == "celllm_released_probe"), name


def test_unreadable_run_record_names_the_file(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="broken.json: unreadable run record"):
        load_runs([tmp_path / "broken.json"])


def test_few_shot_trains_on_a_stratified_few_and_tests_on_the_full_settings_cells():
    labels = np.array(["sensitive"] * 300 + ["resistant"] * 100)
    settings = get_task("drug_sensitivity").settings
    full = split_units(np.arange(400), 3, settings["full"], labels)
    few = split_units(np.arange(400), 3, settings["few_shot"], labels)
    assert ((full == "test") == (few == "test")).all()  # the same test cells
    assert (labels[few == "train"] == "sensitive").sum() == 15 and (labels[few == "train"] == "resistant").sum() == 5
    assert (few == "unused").sum() == 400 - 40 - 20 - 20 and (full == "train").sum() == 320


def test_cold_splits_keep_every_unit_in_one_part():
    lines = np.repeat([f"L{i}" for i in range(20)], 7)
    drugs = np.tile([f"D{i}" for i in range(7)], 20)
    settings = get_task("drug_response").settings
    for units, setting in ((lines, settings["cold_cell"]), (drugs, settings["cold_drug"])):
        split = split_units(units, 0, setting)
        for unit in np.unique(units):
            assert len(set(split[units == unit])) == 1
        assert {"train", "val", "test"} == set(split)
    warm = split_units(np.arange(140), 0, settings["warm"])
    assert (warm == "test").sum() == 14 and (warm == "val").sum() == 14


def _table_record(path, model, kind, seed, rmse, dataset="gdsc_depmap", simulated=False):
    record = {
        "task": "drug_response",
        "setting": "warm",
        "dataset": dataset,
        "simulated": simulated,
        "model": model,
        "kind": kind,
        "seed": seed,
        "metrics": {"rmse": rmse, "pearson": 1 - rmse / 4},
    }
    path.write_text(json.dumps(record))
    return path


def test_tables_rank_flag_controls_and_show_published_rows_on_real_data_only(tmp_path):
    from benchmarks.aggregate import write_tables

    runs = [("celllm_probe", "celllm", 1.2), ("ridge_ecfp", "baseline", 1.6), ("drug_mean", "control", 1.5)]
    paths = [
        _table_record(tmp_path / f"{m}{d}.json", m, k, 0, r, dataset=d, simulated=d.startswith("sim"))
        for m, k, r in runs
        for d in ("gdsc_depmap", "sim_cell_lines")
    ]
    table = write_tables(paths, tmp_path / "t.csv", tmp_path / "t.md", ["rmse", "pearson"])
    real = table[table["dataset"] == "gdsc_depmap"].set_index("model")
    assert real.loc["celllm_probe", "rank"] == 1 and real.loc["ridge_ecfp", "rank"] == 3  # lower RMSE ranks first
    assert real.loc["celllm_probe", "beats_control"] == "yes" and real.loc["ridge_ecfp", "beats_control"] == "no"
    assert pd.isna(real.loc["drug_mean", "beats_control"])
    published = table[table["kind"] == "reference"]
    assert set(published["dataset"]) == {"gdsc_depmap"}  # published numbers are about real data
    assert published.set_index("model").loc["per-drug mean (DeepCDR's 95/5 GDSC split)", "pearson_mean"] == pytest.approx(0.84)
    markdown = (tmp_path / "t.md").read_text()
    assert "| – | *CellLM (paper)* | *published* | – | 0.934 | – | – |" in markdown
    assert "| 3 | ridge_ecfp | baseline | 1.600 | 0.600 | no | 1 |" in markdown  # one seed: no spread to show
    assert "### drug_response / sim_cell_lines (warm; simulated data)" in markdown and markdown.count("*published*: numbers") == 1
