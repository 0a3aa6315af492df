"""TGSA's TGDRP and the CellLM authors' drug-response recipe (benchmarks/models/_tgdrp.py).

References: TGSA's 77 atom features are checked on molecules whose features are worked out by hand
from the feature list (TGSA's smiles2graph.py, dgllife's definitions); graclus by the properties of a
matching; the cached frozen layers against the encoder's own one-pass forward, which
tests/test_released.py checks against the authors' kernel. The models run through the registry
contract on simulated cell lines whose mutation and copy number are simulated too.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import registry
from benchmarks.drugs import TGSA_ATOM_FEATURES, TGSA_ATOM_SYMBOLS, featurize_drugs, tgsa_atom_features, tgsa_graph
from benchmarks.models._tgdrp import CellLMCellEncoder, FrozenStates, coarsen, gene_graph, graclus
from benchmarks.tasks.data import PairData
from celllm.checkpoint import load_checkpoint
from celllm.errors import InputError
from celllm.released import import_released
from celllm.tokens import pad_ragged, tokenize
from tests.fixtures.data import drug_table
from tests.fixtures.released import write_released_checkpoint

GENES = [f"G{i}" for i in range(30)]  # the vocabulary of conftest's tiny checkpoint
FAST = {"epochs": 3, "patience": 10, "batch_size": 16}


def _molecule(smiles):
    from rdkit import Chem

    return Chem.MolFromSmiles(smiles)


# ---------------------------------------------------------------- TGSA's atom features
def test_tgsa_atom_features_of_ethanol_by_hand():
    carbon, _, oxygen = [tgsa_atom_features(atom) for atom in _molecule("CCO").GetAtoms()]
    assert len(TGSA_ATOM_SYMBOLS) == 43 and len(carbon) == TGSA_ATOM_FEATURES == 77
    expected_carbon = np.zeros(77)
    expected_carbon[0] = 1  # symbol C
    expected_carbon[43 + 1] = 1  # degree 1
    expected_carbon[54 + 3] = 1  # implicit valence 3
    expected_carbon[63 + 2] = 1  # hybridisation SP3 (after charge and radicals at 61, 62)
    expected_carbon[69 + 3] = 1  # three hydrogens (after aromatic at 68)
    np.testing.assert_array_equal(carbon, expected_carbon)  # not in a ring, no CIP code
    assert oxygen[2] == 1 and oxygen[43 + 1] == 1 and oxygen[54 + 1] == 1 and oxygen[69 + 1] == 1


def test_tgsa_atom_features_of_charges_rings_and_chirality():
    alanine = [tgsa_atom_features(a) for a in _molecule("C[C@@H](C(=O)O)N").GetAtoms()]
    assert alanine[1][75:] == [0.0, 1.0] and alanine[0][75:] == [0.0, 0.0]  # L-alanine's alpha carbon is S
    benzene = tgsa_atom_features(_molecule("c1ccccc1").GetAtomWithIdx(0))
    assert benzene[68] == 1 and benzene[74] == 1 and benzene[63 + 1] == 1  # aromatic, in a ring, SP2
    ammonium = tgsa_atom_features(_molecule("[NH4+]").GetAtomWithIdx(0))
    assert ammonium[61] == 1 and ammonium[69 + 4] == 1
    gold = tgsa_atom_features(_molecule("[Au]").GetAtomWithIdx(0))
    uranium = tgsa_atom_features(_molecule("[U]").GetAtomWithIdx(0))
    assert gold[TGSA_ATOM_SYMBOLS.index("Au")] == 1 and sum(uranium[:43]) == 0  # an unlisted element: all zeros


def test_tgsa_graph_has_both_directions_of_every_bond_and_is_saved():
    graph = tgsa_graph(_molecule("CCO"))
    assert graph.x.shape == (3, 77) and sorted(map(tuple, graph.edge_index.T.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert tgsa_graph(_molecule("[Na+].[Cl-]")).edge_index.shape == (2, 0)


def test_drug_features_keep_the_tgsa_graphs(tmp_path):
    from benchmarks.drugs import DrugFeatures

    drugs = featurize_drugs(drug_table())
    drugs.save(tmp_path / "d.pt")
    again = DrugFeatures.load(tmp_path / "d.pt")
    assert len(again.tgsa_graphs) == len(drugs) and all(torch.equal(a.x, b.x) for a, b in zip(again.tgsa_graphs, drugs.tgsa_graphs))
    state = torch.load(tmp_path / "d.pt", weights_only=True)
    del state["tgsa_x"]
    torch.save(state, tmp_path / "old.pt")
    with pytest.raises(InputError, match="old.pt: drug feature file lacks 'tgsa_x'"):
        DrugFeatures.load(tmp_path / "old.pt")


# ---------------------------------------------------------------- the gene graph
def test_graclus_is_a_maximal_matching_and_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 60, 150), rng.integers(0, 60, 150)
    edges = np.unique(np.concatenate([np.stack([a, b]), np.stack([b, a])], axis=1), axis=1)
    edges = edges[:, edges[0] != edges[1]]
    cluster = graclus(edges, 60, np.random.default_rng(1))
    sizes = np.bincount(cluster)
    assert sizes.max() <= 2 and set(cluster) == set(range(len(sizes)))
    linked = set(map(tuple, edges.T.tolist()))
    for members in (np.flatnonzero(cluster == c) for c in np.flatnonzero(sizes == 2)):
        assert tuple(members) in linked  # a pair is joined by an edge
    single = set(np.flatnonzero(sizes[cluster] == 1).tolist())
    assert not any(u in single and v in single for u, v in linked)  # maximal: no edge left between two singles
    np.testing.assert_array_equal(cluster, graclus(edges, 60, np.random.default_rng(1)))
    coarse = coarsen(edges, cluster)
    assert (coarse[0] != coarse[1]).all() and coarse.max() < len(sizes) and len(set(map(tuple, coarse.T.tolist()))) == coarse.shape[1]


def test_gene_graph_keeps_pairs_above_the_score_both_ways(tmp_path):
    pd.DataFrame({"gene_a": ["A", "A", "B", "C"], "gene_b": ["B", "C", "C", "X"], "score": [990, 950, 951, 999]}).to_csv(
        tmp_path / "net.tsv", sep="\t", index=False
    )
    edges = gene_graph(tmp_path / "net.tsv", ["A", "B", "C"], 950)
    assert sorted(map(tuple, edges.T.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]  # > 950, as TGSA's > 0.95


# ---------------------------------------------------------------- CellLM's cached frozen layers
def _released_checkpoint(folder: Path) -> Path:
    write_released_checkpoint(folder / "c.pth", len(GENES), seed=2, dim=16, depth=2, heads=2, dim_head=8, nb_features=8, ff_mult=2)
    (folder / "genes.txt").write_text("\n".join(GENES) + "\n")
    import_released(folder / "c.pth", folder / "genes.txt", folder / "imported", max_len=40)
    return folder / "imported"


@pytest.mark.parametrize("mode", ["masked", "released"])
def test_cached_frozen_layers_give_the_one_pass_states(mode, checkpoint, tmp_path):
    from tests.fixtures.data import make_counts

    folder = checkpoint if mode == "masked" else _released_checkpoint(tmp_path)
    model, vocab, cfg = load_checkpoint(folder)
    encoder = model.encoder.eval()
    assert encoder.cfg.attention == mode
    cells = tokenize(make_counts(n_cells=7, n_genes=30, seed=4).X, GENES, vocab, cfg.tokens)
    assert len(set(cells.lengths())) > 2  # lengths differ, so re-batching pads differently
    cached = FrozenStates(encoder, cells, cfg.tokens, batch_size=7, device="cpu")
    branch = CellLMCellEncoder(encoder)
    rows = [5, 0, 3, 3]  # another order, another width, a line twice
    states, mask, gene_ids, line_of_pair = cached.batch(rows, encoder.n_genes, "cpu")
    assert len(states) == 3 and line_of_pair.tolist() == [2, 0, 1, 1]  # each distinct line once
    with torch.no_grad():
        tokens = pad_ragged(*(lambda p: (p.indptr, p.gene_ids, p.bins))(cells.select(sorted(set(rows)))), encoder.n_genes, cfg.tokens)
        expected = encoder(tokens["gene_ids"], tokens["bins"], tokens["mask"])
        got = encoder.norm(encoder.run_layers(states, mask, len(encoder.layers) - 1))[:, : expected.shape[1]]
    m = tokens["mask"]
    # masked: exact; released: the frozen layer saw another batch (the key stabiliser is batch-wide)
    tolerance = 1e-6 if mode == "masked" else 1e-3
    assert (got[m] - expected[m]).abs().max() < tolerance
    assert torch.equal(gene_ids[:, : m.shape[1]][m], tokens["gene_ids"][m])
    out = branch((states, mask, gene_ids, line_of_pair))
    assert out.shape == (4, 256) and torch.equal(out[2], out[3])


# ---------------------------------------------------------------- the models
@pytest.fixture(scope="module")
def lines():
    """12 simulated cell lines over the tiny checkpoint's genes, 4 drugs, mutation and copy number simulated; a network."""
    from ingest.simulate import GeneProgramWorld

    world = GeneProgramWorld(GENES, n_programs=4, seed=0)
    table = drug_table()
    adata, pairs = world.cell_lines(12, table, seed=1)
    drugs = featurize_drugs(pairs)
    order = np.random.default_rng(0).permutation(len(pairs))
    parts = [np.sort(rows) for rows in (order[:32], order[32:40], order[40:])]
    data = [PairData(pairs.iloc[r].reset_index(drop=True), adata[pairs.iloc[r]["cell_line"].unique()].copy(), drugs) for r in parts]
    return data, world.ppi_graph(seed=2)


def _model(name, network, checkpoint=None, seed=0, **options):
    context = registry.ModelContext(checkpoint=checkpoint, network=network, threads=1, options={**FAST, **options})
    return registry.get(name).factory(seed, context)


def test_the_tgdrp_models_are_registered_for_drug_response_only():
    for name, pretraining in (("tgdrp", None), ("celllm_tgdrp", "pretrained"), ("celllm_released_tgdrp", "released")):
        spec = registry.get(name)
        assert spec.tasks == ("drug_response",) and spec.pretraining == pretraining
    assert registry.get("tgdrp").needs_network and not registry.get("celllm_tgdrp").needs_network
    assert registry.get("celllm_tgdrp").options["batch_size"] == 32 and registry.get("tgdrp").options["batch_size"] == 128


@pytest.mark.parametrize("name", ["tgdrp", "celllm_tgdrp"])
def test_tgdrp_models_fit_predict_and_are_seeded(name, lines, tmp_path, checkpoint):
    (train, val, test), network = lines
    network.to_csv(tmp_path / "net.tsv", sep="\t", index=False)
    options = {"min_score": 500} if name == "tgdrp" else {}
    first = _model(name, tmp_path / "net.tsv", checkpoint, **options)
    first.fit(train, val)
    predicted = first.predict(test)
    assert predicted.shape == (len(test),) and np.isfinite(predicted).all() and predicted.std() > 0
    again = _model(name, tmp_path / "net.tsv", checkpoint, **options)
    again.fit(train, val)
    np.testing.assert_allclose(again.predict(test), predicted, rtol=1e-5, atol=1e-6)


def test_tgdrp_predicts_with_the_last_epochs_weights_as_drp_py(lines, tmp_path):
    """drp.py never reloads its early-stopping checkpoint: validation only decides when to stop."""
    (train, val, test), network = lines
    network.to_csv(tmp_path / "net.tsv", sep="\t", index=False)
    no_val = PairData(val.pairs.iloc[:0], val.cell_lines, val.drugs)
    last = _model("tgdrp", tmp_path / "net.tsv", epochs=4, min_score=500)
    last.fit(train, val)
    blind = _model("tgdrp", tmp_path / "net.tsv", epochs=4, min_score=500)
    blind.fit(train, no_val)  # the same four epochs, never validated
    np.testing.assert_allclose(last.predict(test), blind.predict(test), rtol=1e-5, atol=1e-6)
    best = _model("tgdrp", tmp_path / "net.tsv", epochs=4, min_score=500, restore_best=True)
    best.fit(train, val)
    if best.best_epoch < 4:
        assert not np.allclose(best.predict(test), last.predict(test))


def test_tgdrp_names_what_it_lacks(lines, tmp_path):
    (train, val, _), network = lines
    network.to_csv(tmp_path / "net.tsv", sep="\t", index=False)
    bare = train.cell_lines.copy()
    del bare.obsm["mutation"]
    with pytest.raises(InputError, match=r"no mutation profiles \(.obsm\['mutation'\]\)"):
        _model("tgdrp", tmp_path / "net.tsv").fit(PairData(train.pairs, bare, train.drugs), val)
    with pytest.raises(InputError, match="needs the gene interaction network"):
        _model("tgdrp", None).fit(train, val)


def test_missing_omics_profiles_are_imputed_not_fatal(lines, tmp_path):
    (train, val, test), network = lines
    network.to_csv(tmp_path / "net.tsv", sep="\t", index=False)
    holes = train.cell_lines.copy()
    for key in ("mutation", "copy_number"):
        frame = holes.obsm[key].copy()
        frame.iloc[0] = np.nan  # a line DepMap has no profile for
        holes.obsm[key] = frame
    model = _model("tgdrp", tmp_path / "net.tsv", min_score=500)
    model.fit(PairData(train.pairs, holes, train.drugs), val)
    assert np.isfinite(model.predict(test)).all()
