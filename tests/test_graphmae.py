"""PPI graph, GraphMAE gene embeddings and the embedding table file."""

import numpy as np
import pandas as pd
import pytest
import torch

from celllm.errors import InputError
from celllm.ppi import (
    GraphMAE,
    GraphMAEConfig,
    build_gene_graph,
    node_features,
    read_gene_embeddings,
    train_gene_embeddings,
    write_gene_embeddings,
)
from celllm.ppi.graph import isolated_nodes
from celllm.ppi.graphmae import scaled_cosine_error

# Small enough for a few seconds on 2 CPU cores, big enough to learn the communities.
FAST = GraphMAEConfig(hidden_dim=32, heads=2, feature_dim=16, epochs=40, lr=5e-3, seed=3)
EMBED_DIM = 32


def edge_table(rows):
    return pd.DataFrame(rows, columns=["gene_a", "gene_b", "score"])


def edge_set(graph):
    return set(map(tuple, graph.edge_index.t().tolist()))


# ---------------------------------------------------------------- build_gene_graph
def test_graph_follows_gene_order_and_is_symmetric():
    genes = ["C", "A", "B", "D"]
    graph = build_gene_graph(edge_table([("A", "B", 900), ("C", "A", 500)]), genes)
    assert graph.num_nodes == 4 and graph.genes == genes
    # C=0, A=1, B=2: A-B is (1, 2), C-A is (0, 1), each in both directions.
    assert edge_set(graph) == {(1, 2), (2, 1), (0, 1), (1, 0)}
    weight = {tuple(e): w for e, w in zip(graph.edge_index.t().tolist(), graph.edge_weight.tolist())}
    assert weight[(2, 1)] == pytest.approx(0.9) and weight[(0, 1)] == pytest.approx(0.5)
    assert graph.edge_index.dtype == torch.int64


def test_graph_drops_self_loops_duplicates_unknown_genes_and_low_scores():
    genes = ["A", "B", "C", "D", "E"]
    rows = [
        ("A", "B", 400),
        ("B", "A", 800),  # same interaction, other direction: kept once, best score
        ("A", "B", 600),
        ("C", "C", 999),  # self loop
        ("C", "X", 999),  # X is not a vocabulary gene
        ("C", "D", 300),  # below threshold
        ("D", "E", 700),
    ]
    graph = build_gene_graph(edge_table(rows), genes, min_score=500)
    assert edge_set(graph) == {(0, 1), (1, 0), (3, 4), (4, 3)}
    assert graph.edge_weight.tolist() == pytest.approx([0.8, 0.8, 0.7, 0.7])
    assert isolated_nodes(graph).tolist() == [False, False, True, False, False]  # C kept, without edges
    assert edge_set(build_gene_graph(edge_table(rows), genes)) >= {(2, 3), (3, 2)}  # threshold 0 keeps C-D


@pytest.mark.parametrize(
    "table, match",
    [
        (pd.DataFrame({"gene_a": ["A"], "gene_b": ["B"]}), "missing column.*score"),
        (edge_table([("A", "B", "high")]), "not numbers"),
        (edge_table([("A", "B", np.nan)]), "missing or not numbers"),
        (edge_table([("A", "X", 900), ("A", "B", 100)]), "no interaction left"),
    ],
)
def test_graph_errors_name_the_source(table, match):
    with pytest.raises(InputError, match=match) as info:
        build_gene_graph(table, ["A", "B"], min_score=200, source="string.tsv")
    message = str(info.value)
    assert message.startswith("string.tsv:") and "\n" not in message


# ---------------------------------------------------------------- node features
@pytest.fixture(scope="module")
def demo_graph(world):  # `world`: the simulated world of tests/conftest.py
    return build_gene_graph(world.ppi_graph(seed=0), world.genes, source="demo")


def test_node_features_deterministic_finite_and_isolated_genes_distinct(demo_graph):
    features = node_features(demo_graph, 16, seed=1)
    assert features.shape == (765, 16) and features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert torch.equal(features, node_features(demo_graph, 16, seed=1))
    assert not torch.equal(features, node_features(demo_graph, 16, seed=2))
    lonely = features[torch.from_numpy(isolated_nodes(demo_graph))]
    assert len(lonely) > 50
    distances = torch.cdist(lonely, lonely) + torch.eye(len(lonely)) * 1e9
    assert distances.min() > 0.1


# ---------------------------------------------------------------- GraphMAE pieces
def test_scaled_cosine_error():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert scaled_cosine_error(x, 3 * x, alpha=2.0).item() == pytest.approx(0.0, abs=1e-6)
    orthogonal = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    assert scaled_cosine_error(x, orthogonal, alpha=2.0).item() == pytest.approx(1.0)
    assert scaled_cosine_error(x, -x, alpha=3.0).item() == pytest.approx(8.0)


def test_masking_hides_mask_rate_of_candidates():
    cfg = GraphMAEConfig(hidden_dim=8, heads=2, feature_dim=4, mask_rate=0.3, replace_rate=0.2)
    model = GraphMAE(4, 8, cfg)
    with torch.no_grad():
        model.mask_token.fill_(7.0)  # a value no feature has
    x = torch.randn(1000, 4)
    candidates = torch.arange(0, 1000, 2)  # only even nodes may be masked
    x_masked, masked = model.mask_features(x, candidates, torch.Generator().manual_seed(0))
    assert len(masked) == 150 and len(set(masked.tolist())) == 150
    assert (masked % 2 == 0).all()
    unmasked = torch.ones(1000, dtype=torch.bool)
    unmasked[masked] = False
    assert torch.equal(x_masked[unmasked], x[unmasked])
    n_token = int((x_masked[masked] == 7.0).all(dim=1).sum())
    assert n_token == 120  # the other 30 (replace_rate 0.2) carry another node's features


def test_decoder_sees_zero_state_for_masked_nodes(demo_graph):
    cfg = GraphMAEConfig(hidden_dim=8, heads=2, feature_dim=4, dropout=0.0)  # dropout could zero other rows
    model = GraphMAE(4, 8, cfg)
    seen = {}

    def record_decoder_input(module, args):
        seen["hidden"] = args[0].detach()

    model.decoder.register_forward_pre_hook(record_decoder_input)
    x = node_features(demo_graph, 4, seed=0)
    candidates = torch.arange(demo_graph.num_nodes)
    loss = model(x, demo_graph.edge_index, candidates, torch.Generator().manual_seed(5))
    _, masked = model.mask_features(x, candidates, torch.Generator().manual_seed(5))  # same draw
    zero_rows = (seen["hidden"] == 0).all(dim=1)
    assert zero_rows[masked].all() and zero_rows.sum() == len(masked)
    assert loss.item() > 0


def test_config_from_dict_rejects_unknown_keys():
    assert GraphMAEConfig.from_dict({"epochs": 5}).epochs == 5
    with pytest.raises(ValueError, match="unknown GraphMAE option.*epoch_count"):
        GraphMAEConfig.from_dict({"epoch_count": 5})
    with pytest.raises(ValueError, match="divisible"):
        GraphMAEConfig(hidden_dim=30, heads=4)


# ---------------------------------------------------------------- training on the demo PPI graph
@pytest.fixture(scope="module")
def one_thread():
    """A graph this small trains fastest on one thread; several threads spin-wait on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(demo_graph, one_thread):
    return train_gene_embeddings(demo_graph, EMBED_DIM, FAST)


def test_training_lowers_the_loss(trained):
    embeddings, history = trained
    assert len(history) == FAST.epochs and np.isfinite(history).all()
    assert np.mean(history[-5:]) < 0.7 * np.mean(history[:3])


def test_training_is_deterministic(trained, demo_graph, one_thread):
    again, history = train_gene_embeddings(demo_graph, EMBED_DIM, FAST)
    assert history == trained[1]
    assert np.array_equal(again, trained[0])


def test_embeddings_reflect_gene_programs(trained, world):
    embeddings, _ = trained
    assert embeddings.shape == (765, EMBED_DIM) and embeddings.dtype == np.float32
    program = world.program_of_gene
    members = program >= 0
    unit = embeddings[members] / np.linalg.norm(embeddings[members], axis=1, keepdims=True)
    similarity = unit @ unit.T
    same = program[members][:, None] == program[members][None, :]
    np.fill_diagonal(same, False)
    different = program[members][:, None] != program[members][None, :]
    assert similarity[same].mean() > similarity[different].mean() + 0.3


def test_embedding_scale_and_isolated_genes(trained, demo_graph):
    embeddings, _ = trained
    lonely = isolated_nodes(demo_graph)
    # Genes with interactions: standardised columns; isolated genes: N(0, 1) rows, all distinct.
    assert np.allclose(embeddings[~lonely].std(axis=0), 1.0, atol=1e-3)
    assert 0.8 < embeddings[lonely].std() < 1.2
    assert len(np.unique(embeddings[lonely], axis=0)) == lonely.sum()


# ---------------------------------------------------------------- the table file
def test_embedding_file_round_trip_in_vocabulary_order(tmp_path):
    genes = ["A", "B", "C"]
    table = np.arange(6, dtype=np.float32).reshape(3, 2)
    path = tmp_path / "ppi" / "gene_embeddings.npz"
    write_gene_embeddings(path, genes, table)
    with np.load(path, allow_pickle=False) as archive:  # no pickled objects in the file
        assert archive["genes"].dtype.kind == "U" and archive["embeddings"].dtype == np.float32
    rows = read_gene_embeddings(path, ["C", "A"])
    assert rows.dtype == torch.float32
    assert torch.equal(rows, torch.tensor([[4.0, 5.0], [0.0, 1.0]]))
    assert [p.name for p in path.parent.iterdir()] == ["gene_embeddings.npz"]  # no temporary left


def test_embedding_file_errors(tmp_path):
    path = tmp_path / "emb.npz"
    write_gene_embeddings(path, ["A", "B"], np.ones((2, 3)))
    with pytest.raises(InputError, match=r"emb.npz: 2 of 3 vocabulary genes have no embedding \(for example 'X'\)"):
        read_gene_embeddings(path, ["X", "A", "Y"])
    with pytest.raises(InputError, match="missing.npz: gene embedding file not found"):
        read_gene_embeddings(tmp_path / "missing.npz", ["A"])
    (tmp_path / "junk.npz").write_text("not an archive")
    with pytest.raises(InputError, match="junk.npz: not a readable"):
        read_gene_embeddings(tmp_path / "junk.npz", ["A"])
    np.savez(tmp_path / "nan.npz", genes=np.array(["A"]), embeddings=np.array([[np.nan]], dtype=np.float32))
    with pytest.raises(InputError, match="nan.npz: 1 row"):
        read_gene_embeddings(tmp_path / "nan.npz", ["A"])


def test_table_loads_into_the_encoder(tmp_path):
    from celllm.model.encoder import CellLMEncoder, EncoderConfig

    path = tmp_path / "emb.npz"
    write_gene_embeddings(path, ["B", "A"], np.array([[1.0] * 8, [2.0] * 8]))
    encoder = CellLMEncoder(2, 9, EncoderConfig(dim=8, depth=1, heads=2, dim_head=4, nb_features=4))
    encoder.set_gene_embeddings(read_gene_embeddings(path, ["A", "B"]), trainable=False)
    assert encoder.gene_embedding.weight[0, 0].item() == 2.0 and not encoder.gene_embedding.weight.requires_grad
