"""Drug response: drug features, regression metrics and the drug-response models, on tiny data."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import registry
from benchmarks.drugs import DrugFeatures, featurize_drugs
from benchmarks.metrics import regression_metrics
from benchmarks.tasks.data import PairData
from celllm.errors import InputError
from tests.fixtures.data import DRUGS, drug_table, make_drug_response

MODELS = ("deepcdr_mlp", "ridge_ecfp", "drug_mean", "drug_mean_cell_offset")
FAST = {"epochs": 8, "hidden": 16, "batch_size": 16}  # enough to exercise the GIN model, fast on 2 cores


def pair_data(pairs, adata, drugs) -> PairData:
    pairs = pairs.reset_index(drop=True)
    return PairData(pairs=pairs, cell_lines=adata[pairs["cell_line"].unique()].copy(), drugs=drugs)


def split(pairs, adata, drugs, seed=0):
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_train, n_val = int(0.7 * len(pairs)), int(0.15 * len(pairs))
    parts = order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
    return [pair_data(pairs.iloc[np.sort(rows)], adata, drugs) for rows in parts]


def make_model(name, seed=0, **options):
    """The model as a run builds it: its options resolved (and checked) by the registry."""
    spec = registry.get(name)
    return spec.factory(seed, registry.ModelContext(threads=1, options=spec.resolve_options("drug_response", options)))


@pytest.fixture(scope="module")
def drugs():
    return featurize_drugs(drug_table())


@pytest.fixture(scope="module")
def dataset(drugs):
    adata, pairs = make_drug_response(n_lines=12, n_genes=20)
    return split(pairs, adata, drugs)


# ---------------------------------------------------------------- drug features
def test_featurize_drugs_shapes_and_determinism(drugs):
    assert drugs.names == sorted(DRUGS) and len(drugs) == 4
    for graph in drugs.graphs:
        assert graph.x.dtype == torch.float32 and graph.x.ndim == 2 and graph.x.shape[1] == drugs.graphs[0].x.shape[1]
        assert graph.edge_index.dtype == torch.long and graph.edge_index.shape[0] == 2
        assert int(graph.edge_index.max()) < graph.x.shape[0]
    assert drugs.fingerprints.shape == (4, 1024) and drugs.fingerprints.dtype == np.float32
    assert set(np.unique(drugs.fingerprints)) <= {0.0, 1.0} and (drugs.fingerprints.sum(axis=1) > 0).all()

    # a whole response table (each drug many times) gives the same features
    _, pairs = make_drug_response(n_lines=3, n_genes=20)
    again = featurize_drugs(pairs)
    assert again.names == drugs.names and np.array_equal(again.fingerprints, drugs.fingerprints)
    assert all(torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) for a, b in zip(again.graphs, drugs.graphs))


def test_featurizing_is_quiet():
    # deepchem logs warnings on import and RDKit prints parse errors: neither may reach the user
    script = (
        "import pandas as pd; from benchmarks.drugs import featurize_drugs\n"
        "featurize_drugs(pd.DataFrame({'drug': ['Ethanol'], 'smiles': ['CCO']}))\n"
        "try: featurize_drugs(pd.DataFrame({'drug': ['Bad'], 'smiles': ['C1CC((']}))\n"
        "except ValueError: pass\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_drug_index(drugs):
    assert drugs.index(["Gefitinib", "Cisplatin"]).tolist() == [drugs.names.index("Gefitinib"), 0]
    with pytest.raises(InputError, match="unknown drug 'Aspirin'"):
        drugs.index(["Cisplatin", "Aspirin"])


def test_save_load_round_trip(drugs, tmp_path):
    path = tmp_path / "features" / "drugs.pt"
    drugs.save(path)
    loaded = DrugFeatures.load(path)
    assert loaded.names == drugs.names and np.array_equal(loaded.fingerprints, drugs.fingerprints)
    assert all(torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) for a, b in zip(loaded.graphs, drugs.graphs))
    assert [p.name for p in path.parent.iterdir()] == ["drugs.pt"]  # no temporary file left behind


def test_load_names_a_missing_or_unreadable_file(tmp_path):
    with pytest.raises(InputError, match="nope.pt"):
        DrugFeatures.load(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_text("not a torch file")
    with pytest.raises(InputError, match="junk.pt: not a readable drug feature file"):
        DrugFeatures.load(tmp_path / "junk.pt")


@pytest.mark.parametrize(
    "table,message",
    [
        (pd.DataFrame({"drug": ["Cisplatin", "Bad"], "smiles": ["N.N.Cl[Pt]Cl", "C1CC(("]}), "my_table: drug 'Bad': RDKit cannot parse"),
        (pd.DataFrame({"drug": ["Cisplatin"]}), "my_table: missing column.*'smiles'"),
        (pd.DataFrame({"drug": ["X", "X"], "smiles": ["CCO", "CCN"]}), "my_table: drug 'X' has 2 different SMILES"),
        (pd.DataFrame({"drug": ["X"], "smiles": [None]}), "my_table: drug 'X' has no SMILES"),
        (pd.DataFrame({"drug": [], "smiles": []}), "my_table: the drug table is empty"),
    ],
    ids=["bad-smiles", "missing-column", "conflicting-smiles", "no-smiles", "empty"],
)
def test_bad_drug_tables_are_named(table, message):
    with pytest.raises(InputError, match=message) as error:
        featurize_drugs(table, source="my_table")
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- metrics
def test_regression_metrics_perfect():
    y = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 0.5])
    metrics = regression_metrics(y, y, ["a", "a", "a", "b", "b", "b"])
    assert metrics["rmse"] == 0.0 and metrics["mae"] == 0.0 and metrics["r2"] == 1.0
    assert metrics["pearson"] == pytest.approx(1.0) and metrics["spearman"] == pytest.approx(1.0)
    assert metrics["per_drug_pearson"] == pytest.approx(1.0) and metrics["n_drugs_per_drug_pearson"] == 2


def test_regression_metrics_hand_computed():
    # deviations from the mean 2.5: true (-1.5, -.5, .5, 1.5), predicted (-1.5, .5, -.5, 1.5): cov 4, variances 5
    metrics = regression_metrics([1, 2, 3, 4, 7, 8, 1, 2, 3], [1, 3, 2, 4, 7, 9, 5, 5, 5], ["a"] * 4 + ["b"] * 2 + ["c"] * 3)
    truth, pred = np.array([1, 2, 3, 4, 7, 8, 1, 2, 3.0]), np.array([1, 3, 2, 4, 7, 9, 5, 5, 5.0])
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((truth - pred) ** 2)))
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(truth - pred)))
    assert metrics["r2"] == pytest.approx(1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2))
    # b has 2 pairs (too few), c has constant predictions: only a counts
    assert metrics["per_drug_pearson"] == pytest.approx(0.8) and metrics["n_drugs_per_drug_pearson"] == 1
    only_a = regression_metrics([1, 2, 3, 4], [1, 3, 2, 4], ["a"] * 4)
    assert only_a["rmse"] == pytest.approx(np.sqrt(0.5)) and only_a["mae"] == pytest.approx(0.5) and only_a["r2"] == pytest.approx(0.6)
    assert only_a["pearson"] == pytest.approx(0.8) and only_a["spearman"] == pytest.approx(0.8)


def test_regression_metrics_constant_predictions_give_none():
    metrics = regression_metrics([1.0, 2.0, 3.0, 4.0], [2.0] * 4, ["a", "a", "a", "b"])
    assert metrics["pearson"] is None and metrics["spearman"] is None
    assert metrics["per_drug_pearson"] is None and metrics["n_drugs_per_drug_pearson"] == 0
    assert metrics["rmse"] == pytest.approx(np.sqrt(1.5))


# ---------------------------------------------------------------- models
def test_drug_response_models_are_registered():
    models = registry.discover()
    assert set(MODELS) <= set(registry.models_for("drug_response"))
    assert {name: models[name].kind for name in MODELS} == {
        "deepcdr_mlp": "baseline",
        "ridge_ecfp": "baseline",
        "drug_mean": "control",
        "drug_mean_cell_offset": "control",
    }


@pytest.mark.parametrize("name", MODELS)
def test_model_fits_predicts_and_is_seeded(name, dataset):
    train, val, test = dataset
    options = FAST if name == "deepcdr_mlp" else {}
    first = make_model(name, **options)
    first.fit(train, val)
    predictions = first.predict(test)
    assert predictions.shape == (len(test),) and predictions.dtype == np.float64 and np.isfinite(predictions).all()
    second = make_model(name, **options)
    second.fit(train, val)
    assert np.array_equal(second.predict(test), predictions)


def test_gin_model_trains_without_validation_pairs(dataset):
    train, val, test = dataset
    model = make_model("deepcdr_mlp", **FAST)
    model.fit(train, pair_data(val.pairs.iloc[:0], val.cell_lines, val.drugs))
    assert model.best_epoch == FAST["epochs"] and np.isfinite(model.predict(test)).all()


def test_gin_model_options_are_checked_by_the_registry():
    with pytest.raises(InputError, match="unknown option 'epoch'"):
        make_model("deepcdr_mlp", epoch=3)
    with pytest.raises(InputError, match="option 'lr' must be a positive number"):
        make_model("deepcdr_mlp", lr=-1)


def test_controls_give_the_expected_numbers(drugs):
    adata, _ = make_drug_response(n_lines=4, n_genes=20)
    adata.obs_names = ["A", "B", "C", "D"]
    smiles = dict(zip(drug_table()["drug"], drug_table()["smiles"]))
    train = pd.DataFrame(
        [("A", "Cisplatin", 1.0), ("A", "Erlotinib", 3.0), ("B", "Cisplatin", 4.0), ("B", "Erlotinib", 6.0), ("D", "Cisplatin", 0.5)],
        columns=["cell_line", "drug", "ln_ic50"],
    )
    test = pd.DataFrame(
        [("A", "Cisplatin", 0.0), ("B", "Erlotinib", 0.0), ("C", "Cisplatin", 0.0), ("A", "Gefitinib", 0.0)],
        columns=["cell_line", "drug", "ln_ic50"],
    )
    train, test = (pair_data(t.assign(smiles=t["drug"].map(smiles)), adata, drugs) for t in (train, test))
    empty = pair_data(train.pairs.iloc[:0], adata, drugs)

    # drug means: Cisplatin 11/6, Erlotinib 9/2; Gefitinib unseen -> overall 29/10
    drug_mean = make_model("drug_mean")
    drug_mean.fit(train, empty)
    assert drug_mean.predict(test) == pytest.approx([11 / 6, 9 / 2, 11 / 6, 29 / 10])
    # cell offsets (mean residual): A -7/6, B 11/6; C unseen -> 0
    offset = make_model("drug_mean_cell_offset")
    offset.fit(train, empty)
    assert offset.predict(test) == pytest.approx([2 / 3, 19 / 3, 11 / 6, 26 / 15])


def test_gin_model_beats_the_drug_mean_when_the_cell_line_matters(drugs):
    # within a drug, ln IC50 follows the cell line's score (seen in genes G0..G4) plus small noise
    adata, pairs = make_drug_response(n_lines=32, n_genes=20, seed=2)
    train, val, test = split(pairs, adata, drugs, seed=2)
    control = make_model("drug_mean")
    control.fit(train, val)
    gin = make_model("deepcdr_mlp", epochs=60, hidden=32, batch_size=16)
    gin.fit(train, val)
    control_mse = np.mean((control.predict(test) - test.values) ** 2)
    gin_mse = np.mean((gin.predict(test) - test.values) ** 2)
    assert gin_mse < 0.5 * control_mse
    assert regression_metrics(test.values, gin.predict(test), test.pairs["drug"])["per_drug_pearson"] > 0.5
