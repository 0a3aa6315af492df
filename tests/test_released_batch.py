"""The size of the released model's batch dependence, and the benchmark that measures it.

The authors' kernel stabilises the key features with one max over the batch's whole key
tensor, padding keys included, so a cell's [CLS] depends a little on its batch mates
(celllm.model.attention). tests/test_released.py checks the forward pass of one batch
against a reference written from the authors' definitions (tests/fixtures/released.py).
Here the bounds are independent of the code under test: how much a cell moves between
batch compositions is taken from that reference run on the same compositions; the floor
is the float32 noise of the same computation made batch-free by performer-pytorch's
per-cell-and-head max; and at one attention layer, in float64, the batch-wide max is
checked where a padding key holds it, and the per-cell switch against performer-pytorch
itself.
"""

import json

import numpy as np
import pytest
import torch
from performer_pytorch.performer_pytorch import linear_attention, softmax_kernel

from celllm.checkpoint import load_checkpoint
from celllm.embed import embed_tokens
from celllm.io import write_h5ad
from celllm.model.attention import MaskedFavorAttention
from celllm.released import import_released
from celllm.tokens import TokenConfig, TokenizedCells, pad_batch
from tests.fixtures.data import make_counts, token_cells
from tests.fixtures.released import released_kernel, write_released_checkpoint

TINY = {"dim": 16, "depth": 2, "heads": 2, "dim_head": 8, "nb_features": 8, "ff_mult": 2}
N_GENES, MAX_LEN = 50, 40
LENGTHS = tuple(int(n) for n in np.random.default_rng(0).integers(1, 40, 64))  # 64 cells of 1-39 genes
SHUFFLE = np.random.default_rng(1).permutation(64)
# The reference's largest [CLS] change against the authors' batches (32 in order) with these weights and cells
# (measured 3.4e-4 alone, 9.6e-5 in one batch of 64 and shuffled into batches of 32; values of the [CLS] ~1)
MEASURED = {"alone": 3.4e-4, "batch_64": 9.6e-5, "shuffled": 9.6e-5}
COMPOSITIONS = {"authors": (32, None), "alone": (1, None), "batch_64": (64, None), "shuffled": (32, SHUFFLE)}


@pytest.fixture(scope="module")
def tiny_released(tmp_path_factory):
    folder = tmp_path_factory.mktemp("released_batch")
    reference = write_released_checkpoint(folder / "checkpoint4_fixed.pth", N_GENES, seed=3, **TINY)
    (folder / "genes.txt").write_text("".join(f"G{i}\n" for i in range(N_GENES)))
    import_released(folder / "checkpoint4_fixed.pth", folder / "genes.txt", folder / "imported", max_len=MAX_LEN)
    model, _, cfg = load_checkpoint(folder / "imported")
    return reference, model.encoder, cfg


def _ours(encoder, cfg, cells, batch_size, order, key_max="batch"):
    tokenized = TokenizedCells(
        np.concatenate([[0], np.cumsum([len(g) for g, _ in cells])]),
        np.concatenate([g for g, _ in cells]).astype(np.int64),
        np.concatenate([b for _, b in cells]).astype(np.int64),
    )
    order = np.arange(len(cells)) if order is None else order
    for layer in encoder.layers:
        layer.attn.released_key_max = key_max
    try:
        out = np.empty((len(cells), encoder.cfg.dim), dtype=np.float32)
        out[order] = embed_tokens(encoder, tokenized.select(order), cfg.tokens, batch_size=batch_size)
    finally:
        for layer in encoder.layers:
            del layer.attn.released_key_max
    return out


def _theirs(reference, cells, batch_size, order):
    order = np.arange(len(cells)) if order is None else order
    out = np.empty((len(cells), TINY["dim"]), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = pad_batch([cells[i] for i in rows], N_GENES, TokenConfig(max_len=MAX_LEN))
        with torch.no_grad():
            out[rows] = reference(batch["gene_ids"], batch["bins"], batch["mask"], MAX_LEN)[:, 0].numpy()
    return out


def test_a_cell_moves_between_batches_as_much_as_in_the_authors_computation(tiny_released):
    reference, encoder, cfg = tiny_released
    cells = token_cells(n_genes=N_GENES, lengths=LENGTHS)
    ours = {name: _ours(encoder, cfg, cells, *how) for name, how in COMPOSITIONS.items()}
    theirs = {name: _theirs(reference, cells, *how) for name, how in COMPOSITIONS.items()}
    # the float32 noise floor: the same cells with performer-pytorch's max per cell and head, alone and in batches of 32
    floor = np.abs(_ours(encoder, cfg, cells, 1, None, "cell") - _ours(encoder, cfg, cells, 32, None, "cell")).max()
    assert floor < 1e-6
    for name in ("alone", "batch_64", "shuffled"):
        authors_move = theirs[name] - theirs["authors"]
        size = np.abs(authors_move).max()
        assert MEASURED[name] / 3 < size < 3 * MEASURED[name], (name, size)  # the bound measured with these weights
        assert size > 30 * floor  # far above float32 noise
        # the same cells move by the same amounts: within 5% of the movement (float32 rounding of both computations)
        assert np.abs((ours[name] - ours["authors"]) - authors_move).max() < 0.05 * size, name


def _released_attention_by_definition(attention, x, lengths, pad_to, per_cell=False, real_keys_only=False):
    """One attention layer as the released code computes it: each cell padded to `pad_to` positions with copies of its
    padding state x[i, length], values masked at padding, keys not; the random-feature maps of the authors' kernel
    (one key max over the whole batch) or, `per_cell`, performer-pytorch 1.1.4's (one per cell and head)."""
    padded = torch.stack([torch.cat([x[i, :n], x[i, n : n + 1].expand(pad_to - n, -1)]) for i, n in enumerate(lengths)])
    real = torch.arange(pad_to)[None, :] < torch.tensor(lengths)[:, None]
    q, k, v = attention.to_qkv(padded).unflatten(-1, (3, attention.heads, -1)).permute(2, 0, 3, 1, 4)
    v = v * real[:, None, :, None]
    matrix = attention.projection_matrix
    if per_cell:
        q_prime = softmax_kernel(q, projection_matrix=matrix, is_query=True)
        k_prime = softmax_kernel(k, projection_matrix=matrix, is_query=False)
        out = linear_attention(q_prime, k_prime, v)
    else:
        q_prime = released_kernel(q, matrix, True)
        if real_keys_only:  # a wrong stabiliser: the max over real keys only
            scaled = k * k.shape[-1] ** -0.25
            dash = torch.einsum("bhnd,md->bhnm", scaled, matrix)
            largest = dash.masked_fill(~real[:, None, :, None], float("-inf")).max()
            k_prime = matrix.shape[0] ** -0.5 * (torch.exp(dash - (scaled**2).sum(-1, keepdim=True) / 2 - largest) + 1e-4)
        else:
            k_prime = released_kernel(k, matrix, False)
        context = torch.einsum("bhnm,bhne->bhme", k_prime, v)
        out = torch.einsum("bhnm,bhme->bhne", q_prime, context) / torch.einsum("bhnm,bhm->bhn", q_prime, k_prime.sum(dim=-2))[..., None]
    return attention.to_out(out.transpose(1, 2).flatten(-2))


def test_the_key_max_is_one_for_the_batch_padding_included_or_per_cell_as_performer_pytorch():
    torch.manual_seed(0)
    attention = MaskedFavorAttention(dim=12, heads=3, dim_head=4, nb_features=6).double().eval()
    lengths, pad_to = [4, 7, 1], 10
    x = torch.randn(3, 8, 12, dtype=torch.float64)  # 7 real positions at most, then the stand-in padding position
    x[1, 7] *= 6  # one cell's padding state far from the rest, so that a padding key holds the batch's max
    mask = torch.arange(8)[None, :] < torch.tensor(lengths)[:, None]
    padding = torch.tensor([pad_to - n for n in lengths])
    with torch.no_grad():
        ours = attention(x, mask, padding=padding)
        theirs = _released_attention_by_definition(attention, x, lengths, pad_to)
        wrong = _released_attention_by_definition(attention, x, lengths, pad_to, real_keys_only=True)
        attention.released_key_max = "cell"
        ours_per_cell = attention(x, mask, padding=padding)
        library = _released_attention_by_definition(attention, x, lengths, pad_to, per_cell=True)
        alone = [attention(x[i : i + 1], mask[i : i + 1], padding=padding[i : i + 1])[0] for i in range(3)]
    for i, n in enumerate(lengths):
        assert torch.allclose(ours[i, :n], theirs[i, :n], rtol=0, atol=1e-12)
        assert torch.allclose(ours_per_cell[i, :n], library[i, :n], rtol=0, atol=1e-12)
        assert torch.allclose(alone[i][:n], ours_per_cell[i, :n], rtol=0, atol=1e-12)  # per cell and head: no batch dependence
    # the check is sensitive: a max over real keys only, or one per cell and head, gives other outputs
    assert max((wrong[i, :n] - theirs[i, :n]).abs().max().item() for i, n in enumerate(lengths)) > 1e-8
    assert max((ours_per_cell[i, :n] - ours[i, :n]).abs().max().item() for i, n in enumerate(lengths)) > 1e-8


def test_the_benchmark_measures_both_models_and_the_probe(tmp_path, checkpoint):
    from benchmarks.perf import released_batch

    data = {}
    for name, seed in (("pbmc68k_reduced", 0), ("sim_pbmc", 1)):
        data[name] = tmp_path / f"{name}.h5ad"
        write_h5ad(make_counts(n_cells=70, seed=seed, labels=("a", "b", "c")), data[name])
    out = tmp_path / "released_batch.json"
    argv = [
        "--out",
        str(out),
        "--data",
        *map(str, data.values()),
        "--checkpoint",
        str(checkpoint),
        "--threads",
        "1",
        "--probe-seeds",
        "0",
        "1",
    ]
    assert released_batch.main(argv) == 0
    result = json.loads(out.read_text())
    rows = {(r["dataset"], r["model"], r["comparison"]): r for r in result["embedding"]}
    assert len(rows) == 2 * 2 * 5 and result["models"]["paper_head_random"]["pad_to"] == 6000
    assert result["models"]["demo_released"]["encoder"]["attention"] == "released"
    for dataset in data:
        for model in ("demo_released", "paper_head_random"):
            floor = rows[dataset, model, "noise_floor"]["max_abs"]
            assert floor < 1e-6 and rows[dataset, model, "per_cell"]["max_abs"] > 10 * floor  # the stabiliser's effect is above noise
            assert rows[dataset, model, "batch_1"]["max_abs"] > floor and rows[dataset, model, "per_cell"]["max_rel"] > 0
    probe = {(r["dataset"], r["model"], r["variant"]): r for r in result["probe"]}
    assert len(probe) == 2 * len(released_batch.PROBE_VARIANTS) and all(
        r["seeds"] == 2 for r in probe.values()
    )  # the checkpoint's model only
    assert {m for _, m, _ in probe} == {"demo_released"} and result["models"]["paper_head_random"]["max_cells"] == 128
    assert all(0 <= r["accuracy_mean"] <= 1 for r in probe.values())
    assert {r["metric"] for r in result["probe_summary"]} == {"accuracy", "macro_f1"}
