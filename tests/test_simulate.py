"""Tests of the simulated world: well-formed AnnData, determinism, realistic sparsity,
labels that carry (but do not give away) signal, drug responses tied to structure,
and a community-structured PPI graph."""

import re
from collections import Counter

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from ingest.simulate import (
    GeneProgramWorld,
    load_drug_table,
    smiles_structure_vector,
)
from tests.fixtures.data import SIM_GENES as GENES  # the demo's gene count; `world` (tests/conftest.py) is their world

ERLOTINIB = "COCCOC1=C(C=C2C(=C1)C(=NC=N2)NC3=CC=CC(=C3)C#C)OCCOC"


@pytest.fixture(scope="module")
def corpus(world):
    return world.pretraining_corpus(2000, seed=1)


@pytest.fixture(scope="module")
def pbmc(world):
    return world.cell_types(2000, n_types=8, seed=1)


@pytest.fixture(scope="module")
def sensitivity(world):
    return world.drug_sensitivity(2000, seed=1)


@pytest.fixture(scope="module")
def cell_lines(world):
    return world.cell_lines(150, load_drug_table(), seed=1)


def log_normalised(adata):
    counts = adata.X.toarray()
    return np.log1p(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) * 1e4)


def held_out_accuracy(adata, label):
    y = adata.obs[label].astype(str).to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(log_normalised(adata), y, test_size=0.3, random_state=0, stratify=y)
    # One BLAS thread: on small CPUs thread contention makes this fit 50x slower.
    with threadpool_limits(limits=1):
        return LogisticRegression(max_iter=300).fit(x_train, y_train).score(x_test, y_test)


def majority_rate(adata, label):
    return adata.obs[label].value_counts(normalize=True).max()


def sparsity(adata):
    return 1.0 - adata.X.nnz / np.prod(adata.shape)


# ---------------------------------------------------------------- the world itself
def test_world_rejects_bad_arguments():
    with pytest.raises(ValueError, match="non-empty"):
        GeneProgramWorld([])
    with pytest.raises(ValueError, match="unique"):
        GeneProgramWorld(["A", "A"] + GENES[:50])
    with pytest.raises(ValueError, match="n_programs"):
        GeneProgramWorld(GENES, n_programs=3)
    with pytest.raises(ValueError, match="too few"):
        GeneProgramWorld(GENES[:10], n_programs=12)
    with pytest.raises(ValueError, match="seed"):
        GeneProgramWorld(GENES, seed=-1)


def test_dataset_methods_reject_bad_arguments(world):
    with pytest.raises(ValueError, match="n_types"):
        world.cell_types(100, n_types=1, seed=0)
    with pytest.raises(ValueError, match="n_cells"):
        world.cell_types(3, n_types=5, seed=0)
    with pytest.raises(ValueError, match="tumor_fraction"):
        world.pretraining_corpus(100, seed=0, tumor_fraction=1.5)
    with pytest.raises(ValueError, match="sensitive_fraction"):
        world.drug_sensitivity(100, seed=0, sensitive_fraction=0.0)
    with pytest.raises(ValueError, match="smiles"):
        world.cell_lines(5, pd.DataFrame({"drug": ["x"]}), seed=0)
    with pytest.raises(ValueError, match="unique"):
        world.cell_lines(5, pd.DataFrame({"drug": ["x", "x"], "smiles": ["CCO", "CCN"]}), seed=0)
    with pytest.raises(ValueError, match="activity"):
        world.sample_counts(np.zeros((4, 3)), np.random.default_rng(0))


def test_world_structure(world):
    programs = world.program_of_gene
    assert programs.shape == (len(GENES),)
    assert (programs == -1).any(), "some genes must be background"
    sizes = np.bincount(programs[programs >= 0], minlength=world.n_programs)
    assert sizes.min() >= 2
    assert world.loadings.shape == (world.n_programs, len(GENES))
    # A program only drives its own genes.
    for program in range(world.n_programs):
        assert np.all(world.loadings[program, programs != program] == 0)
        assert np.all(world.loadings[program, programs == program] > 0)
    again = GeneProgramWorld(GENES, seed=0)
    np.testing.assert_array_equal(again.program_of_gene, programs)
    np.testing.assert_array_equal(again.base_log_mean, world.base_log_mean)
    assert not np.array_equal(GeneProgramWorld(GENES, seed=1).program_of_gene, programs)


def test_sample_counts_follow_library_size_and_activity(world):
    rng = np.random.default_rng(0)
    quiet = np.zeros((1000, world.n_programs))
    active = quiet.copy()
    active[:, 5] = 2.0
    counts_quiet = world.sample_counts(quiet, rng, library_size_mean=500.0)
    counts_active = world.sample_counts(active, rng, library_size_mean=500.0)
    assert isinstance(counts_quiet, sp.csr_matrix) and counts_quiet.dtype == np.float32
    assert counts_quiet.shape == (1000, len(GENES))
    assert abs(counts_quiet.sum(axis=1).mean() / 500.0 - 1) < 0.1
    members = world.program_of_gene == 5
    share_quiet = counts_quiet[:, members].sum() / counts_quiet.sum()
    share_active = counts_active[:, members].sum() / counts_active.sum()
    assert share_active > 3 * share_quiet


# ---------------------------------------------------------------- shared AnnData contract
@pytest.mark.parametrize(
    "name, dataset",
    [
        ("corpus", "sim_pretrain"),
        ("pbmc", "sim_pbmc"),
        ("sensitivity", "sim_drug_sensitivity"),
        ("cell_lines", "sim_cell_lines"),
    ],
)
def test_anndata_contract(request, name, dataset):
    adata = request.getfixturevalue(name)
    if isinstance(adata, tuple):
        adata = adata[0]
    assert isinstance(adata.X, sp.csr_matrix) and adata.X.dtype == np.float32
    values = adata.X.data
    assert np.all(values >= 0) and np.all(values == np.round(values))
    assert list(adata.var_names) == GENES
    assert adata.obs_names.is_unique and all(isinstance(n, str) for n in adata.obs_names)
    assert adata.uns["simulated"] is True
    assert adata.uns["dataset"] == dataset and dataset.startswith("sim_")
    assert adata.uns["count_scale"] == "raw_counts"
    assert adata.uns["seed"] == 1
    assert adata.obsm["sim_program_activity"].shape == (adata.n_obs, 12)


def test_h5ad_round_trip(pbmc, tmp_path):
    path = tmp_path / "pbmc.h5ad"
    pbmc.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert (back.X != pbmc.X).nnz == 0
    assert bool(back.uns["simulated"]) and back.uns["dataset"] == "sim_pbmc"
    assert list(back.obs["cell_type"]) == list(pbmc.obs["cell_type"])


@pytest.mark.parametrize("name", ["corpus", "pbmc", "sensitivity"])
def test_single_cell_sparsity_is_realistic(request, name):
    assert 0.85 <= sparsity(request.getfixturevalue(name)) <= 0.95


def test_same_seed_same_data_and_different_seed_different_data(world, pbmc):
    again = GeneProgramWorld(GENES, seed=0).cell_types(2000, n_types=8, seed=1)
    assert (again.X != pbmc.X).nnz == 0
    assert list(again.obs["cell_type"]) == list(pbmc.obs["cell_type"])
    other_seed = world.cell_types(2000, n_types=8, seed=2)
    assert (other_seed.X != pbmc.X).nnz > 0
    other_world = GeneProgramWorld(GENES, seed=5).cell_types(2000, n_types=8, seed=1)
    assert (other_world.X != pbmc.X).nnz > 0

    first = world.pretraining_corpus(300, seed=3)
    second = world.pretraining_corpus(300, seed=3)
    assert (first.X != second.X).nnz == 0 and first.obs.equals(second.obs)
    _, pairs_a = world.cell_lines(10, load_drug_table(), seed=3)
    _, pairs_b = world.cell_lines(10, load_drug_table(), seed=3)
    _, pairs_c = world.cell_lines(10, load_drug_table(), seed=4)
    pd.testing.assert_frame_equal(pairs_a, pairs_b)
    assert not np.allclose(pairs_a["ln_ic50"], pairs_c["ln_ic50"])


def test_large_dataset_is_fast(world):
    import time

    start = time.perf_counter()
    adata = world.cell_types(5000, n_types=10, seed=0)
    assert adata.shape == (5000, len(GENES))
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------- labels carry signal
def test_corpus_labels(corpus):
    assert set(corpus.obs["tissue"].cat.categories) == {"normal", "tumor"}
    assert abs((corpus.obs["tissue"] == "tumor").mean() - 0.5) < 0.01
    assert corpus.obs["sample"].nunique() == 8
    # Each sample comes from one tissue only.
    assert (corpus.obs.groupby("sample", observed=True)["tissue"].nunique() == 1).all()
    assert corpus.obs["cell_type"].str.match(r"type_\d\d$").all()
    accuracy = held_out_accuracy(corpus, "tissue")
    assert accuracy > majority_rate(corpus, "tissue") + 0.15


def test_corpus_tumor_fraction_extremes(world):
    assert (world.pretraining_corpus(50, seed=0, tumor_fraction=0.0).obs["tissue"] == "normal").all()
    assert (world.pretraining_corpus(50, seed=0, tumor_fraction=1.0).obs["tissue"] == "tumor").all()


def test_cell_types_are_unbalanced_and_learnable(pbmc):
    counts = pbmc.obs["cell_type"].value_counts()
    assert sorted(counts.index) == [f"type_{i:02d}" for i in range(8)]
    assert counts.max() > 4 * counts.min()
    accuracy = held_out_accuracy(pbmc, "cell_type")
    assert accuracy > majority_rate(pbmc, "cell_type") + 0.3


def test_cell_types_share_biology_with_corpus(world, corpus, pbmc):
    """type_03 means the same activity prototype in both datasets."""
    for name in ["type_00", "type_03"]:
        in_corpus = corpus.obs["cell_type"] == name
        in_pbmc = pbmc.obs["cell_type"] == name
        if in_corpus.sum() < 20:
            continue
        identity = slice(3, None)  # identity programs; tumours shift the others
        corpus_mean = corpus.obsm["sim_program_activity"][in_corpus.to_numpy(), identity].mean(axis=0)
        pbmc_mean = pbmc.obsm["sim_program_activity"][in_pbmc.to_numpy(), identity].mean(axis=0)
        assert np.corrcoef(corpus_mean, pbmc_mean)[0, 1] > 0.8


def test_drug_sensitivity_is_learnable_but_not_trivial(sensitivity):
    assert set(sensitivity.obs["response"]) == {"sensitive", "resistant"}
    assert abs((sensitivity.obs["response"] == "sensitive").mean() - 0.5) < 0.01
    accuracy = held_out_accuracy(sensitivity, "response")
    assert 0.6 < accuracy < 0.99


# ---------------------------------------------------------------- drugs and cell lines
def test_cell_line_pairs_are_complete_and_realistic(cell_lines):
    adata, pairs = cell_lines
    drugs = load_drug_table()
    assert list(pairs.columns) == ["cell_line", "drug", "smiles", "ln_ic50"]
    assert len(pairs) == adata.n_obs * len(drugs)
    assert not pairs.duplicated(["cell_line", "drug"]).any()
    assert pairs["ln_ic50"].dtype == float and pairs["ln_ic50"].notna().all()
    low, high = np.percentile(pairs["ln_ic50"], [1, 99])
    assert -4.5 < low and high < 8.5
    assert list(adata.obs_names) == [f"SIMCL-{i:03d}" for i in range(adata.n_obs)]
    assert list(adata.obs["cell_line"]) == list(adata.obs_names)
    assert set(pairs["cell_line"]) == set(adata.obs_names)
    assert adata.X.sum(axis=1).min() > 1e5, "bulk profiles are deep"


def test_ln_ic50_depends_on_drug_and_cell_line(world, cell_lines):
    adata, pairs = cell_lines
    drug_means = pairs.groupby("drug")["ln_ic50"].transform("mean")
    total = ((pairs["ln_ic50"] - pairs["ln_ic50"].mean()) ** 2).sum()
    explained_by_drug = 1 - ((pairs["ln_ic50"] - drug_means) ** 2).sum() / total
    assert 0.3 < explained_by_drug < 0.9

    # Cell lines with high drug-response program expression are more sensitive (lower IC50).
    counts = adata.X.toarray()
    members = world.program_of_gene == 2
    program_score = np.log1p(counts[:, members] / counts.sum(axis=1, keepdims=True) * 1e6).mean(axis=1)
    table = pairs.pivot(index="cell_line", columns="drug", values="ln_ic50").loc[adata.obs_names]
    correlations = [np.corrcoef(table[drug], program_score)[0, 1] for drug in table.columns]
    assert np.mean(correlations) < -0.25


def test_similar_structures_get_similar_responses(world):
    analogue = ERLOTINIB.replace("C#C", "Cl")  # one substituent changed
    drugs = pd.DataFrame({"drug": ["erlotinib", "analogue", "cisplatin"], "smiles": [ERLOTINIB, analogue, "N.N.Cl[Pt]Cl"]})
    _, pairs = world.cell_lines(200, drugs, seed=0)
    table = pairs.pivot(index="cell_line", columns="drug", values="ln_ic50")
    close = np.corrcoef(table["erlotinib"], table["analogue"])[0, 1]
    far = np.corrcoef(table["erlotinib"], table["cisplatin"])[0, 1]
    assert close > far + 0.3


def test_structure_vector_is_deterministic_and_structural():
    vector = smiles_structure_vector(ERLOTINIB)
    np.testing.assert_array_equal(vector, smiles_structure_vector(ERLOTINIB))
    assert np.isclose(np.linalg.norm(vector), 1.0)
    analogue = smiles_structure_vector(ERLOTINIB.replace("C#C", "Cl"))
    assert vector @ analogue > vector @ smiles_structure_vector("N.N.Cl[Pt]Cl") + 0.3
    with pytest.raises(ValueError, match="SMILES"):
        smiles_structure_vector("")
    # Two quinazoline EGFR inhibitors look alike; a platinum salt does not.
    table = load_drug_table().set_index("drug")["smiles"]
    erlotinib, gefitinib, cisplatin = (smiles_structure_vector(table[name]) for name in ["Erlotinib", "Gefitinib", "Cisplatin"])
    assert erlotinib @ gefitinib > erlotinib @ cisplatin + 0.2


def test_drug_table_is_shipped():
    table = load_drug_table()
    assert {"drug", "smiles", "formula"} <= set(table.columns)
    assert len(table) >= 12 and table["drug"].is_unique
    assert {"Cisplatin", "Erlotinib", "Gefitinib", "Fluorouracil"} <= set(table["drug"])


def element_counts(formula):
    counts = Counter()
    for element, number in re.findall(r"([A-Z][a-z]?)(\d*)", formula):
        counts[element] += int(number or 1)
    return counts


def test_drug_smiles_match_their_formulas():
    pytest.importorskip("rdkit")
    from rdkit import Chem, RDLogger
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    RDLogger.DisableLog("rdApp.*")
    for row in load_drug_table().itertuples():
        molecule = Chem.MolFromSmiles(row.smiles)
        assert molecule is not None, f"{row.drug}: SMILES does not parse"
        # Compare element counts: Hill order for carbon-free formulas differs by convention.
        assert element_counts(CalcMolFormula(molecule)) == element_counts(row.formula), row.drug


# ---------------------------------------------------------------- PPI graph
def test_ppi_graph_has_program_communities(world):
    edges = world.ppi_graph(seed=0)
    assert list(edges.columns) == ["gene_a", "gene_b", "score"]
    assert len(edges) > len(GENES)
    assert (edges["gene_a"] != edges["gene_b"]).all()
    undirected = {frozenset(pair) for pair in zip(edges["gene_a"], edges["gene_b"])}
    assert len(undirected) == len(edges), "duplicate edges"
    assert np.issubdtype(edges["score"].dtype, np.integer)
    assert edges["score"].between(0, 1000).all()
    assert set(edges["gene_a"]) | set(edges["gene_b"]) <= set(GENES)

    program = dict(zip(GENES, world.program_of_gene))
    a, b = edges["gene_a"].map(program), edges["gene_b"].map(program)
    within = (a == b) & (a >= 0)
    assert within.mean() > 0.7
    assert edges.loc[within, "score"].mean() > edges.loc[~within, "score"].mean()

    connected = set(edges["gene_a"]) | set(edges["gene_b"])
    background = [g for g in GENES if program[g] < 0]
    assert any(g not in connected for g in background), "some background genes are isolated"

    pd.testing.assert_frame_equal(edges, world.ppi_graph(seed=0))
    assert not edges.equals(world.ppi_graph(seed=1))


def test_released_binning_of_simulated_cells_is_not_saturated(pbmc):
    """Realistic library sizes: after scaling to 1e4 and log2, single counts do not all hit bin 5."""
    from celllm.tokens import TokenConfig, Vocabulary, tokenize

    cells = tokenize(pbmc.X, pbmc.var_names, Vocabulary(pbmc.var_names), TokenConfig())
    share = np.bincount(cells.bins, minlength=6) / len(cells.bins)
    assert share[5] < 0.4 and (share[1:5] > 0.02).sum() >= 3, share
