"""The authors' released CellLM: import its state dict, reproduce its forward pass, embed and fine-tune with it.

The reference forward pass (tests/fixtures/released.py) is written by this project from the
definitions in the authors' code, not taken from performer-pytorch: their kernel stabilises
keys with one max over the whole batch, which the library does per cell and head. Weights are
random, in the released key layout.
"""

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from celllm.checkpoint import load_checkpoint
from celllm.cli import main
from celllm.errors import InputError
from celllm.io import write_h5ad
from celllm.released import import_released, released_sizes
from celllm.tokens import TokenConfig, pad_batch
from tests.fixtures.data import token_cells
from tests.fixtures.formats import HGNC_GENES, write_hgnc
from tests.fixtures.released import PAPER_SIZES, ReleasedCellLM, released_state_dict, write_released_checkpoint

TINY = {"dim": 16, "depth": 2, "heads": 2, "dim_head": 8, "nb_features": 8, "ff_mult": 2}
N_GENES, MAX_LEN = 50, 40


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A tiny released-format file, its gene order, the reference model, and its import."""
    folder = tmp_path_factory.mktemp("released")
    reference = write_released_checkpoint(folder / "checkpoint4_fixed.pth", N_GENES, seed=3, **TINY)
    (folder / "genes.txt").write_text("".join(f"G{i}\n" for i in range(N_GENES)))
    import_released(folder / "checkpoint4_fixed.pth", folder / "genes.txt", folder / "imported", max_len=MAX_LEN)
    return folder, reference


def test_the_released_forward_pass_is_reproduced_and_the_masked_one_differs(released):
    folder, reference = released
    model, vocab, cfg = load_checkpoint(folder / "imported")
    assert cfg.encoder.attention == "released" and cfg.tokens.truncation == "vocabulary_order" and vocab.genes[:2] == ["G0", "G1"]
    cells = token_cells(n_genes=N_GENES, lengths=(3, 17, 39, 8, 1))  # one cell of 39 genes + [CLS] = 40 tokens: no padding at all
    batch = pad_batch(cells, N_GENES, TokenConfig(max_len=MAX_LEN))
    with torch.no_grad():
        theirs = reference(batch["gene_ids"], batch["bins"], batch["mask"], MAX_LEN)
        ours = model.encoder(batch["gene_ids"], batch["bins"], batch["mask"])
        one_by_one = [model.encoder(*(pad_batch([c], N_GENES, TokenConfig())[k] for k in ("gene_ids", "bins", "mask")))[0] for c in cells]
    released_error = max((ours[i, : len(g) + 1] - theirs[i, : len(g) + 1]).abs().max().item() for i, (g, _) in enumerate(cells))
    assert released_error < 1e-5  # [CLS] and every real token, cells of different lengths
    # the authors' stabiliser is one max over the batch: a cell alone comes out a little different (measured 4e-5 here)
    alone = max((one[: len(g) + 1] - ours[i, : len(g) + 1]).abs().max().item() for i, (one, (g, _)) in enumerate(zip(one_by_one, cells)))
    assert 1e-7 < alone < 1e-3

    import dataclasses

    from celllm.pretrain.model import CellLMForPretraining

    masked = CellLMForPretraining(N_GENES, dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, attention="masked"))).eval()
    masked.load_state_dict(model.state_dict())
    with torch.no_grad():
        ours_masked = masked.encoder(batch["gene_ids"], batch["bins"], batch["mask"])
    masked_error = [(ours_masked[i, : len(g) + 1] - theirs[i, : len(g) + 1]).abs().max().item() for i, (g, _) in enumerate(cells)]
    assert max(masked_error) > 1e-2  # the deliberate deviation: padding keys are kept out
    assert masked_error[2] < 1e-3  # ... which for a cell without padding changes only the batch-wide stabiliser (3.4e-4 here)
    (folder / "errors.json").write_text(json.dumps({"released": released_error, "masked": max(masked_error)}))


def test_the_released_forward_pass_at_the_papers_head_size_in_the_released_batch(tmp_path):
    # 64-dim heads and 266 random features as released, 32 cells of mixed lengths (the authors' inference batch)
    # padded to 6,000 tokens; a narrower, shallower model than the paper's so that it runs in a test
    sizes = {"dim": 128, "depth": 2, "heads": 2, "dim_head": 64, "nb_features": 266, "ff_mult": 4}
    reference = write_released_checkpoint(tmp_path / "c.pth", N_GENES, seed=5, **sizes)
    (tmp_path / "genes.txt").write_text("".join(f"G{i}\n" for i in range(N_GENES)))
    import_released(tmp_path / "c.pth", tmp_path / "genes.txt", tmp_path / "imported")
    model, _, cfg = load_checkpoint(tmp_path / "imported")
    assert cfg.tokens.max_len == 6000
    cells = token_cells(n_genes=N_GENES, lengths=(3, 17, 39, 8, 1, 25, 12, 30) * 4)
    batch = pad_batch(cells, N_GENES, TokenConfig(max_len=6000))
    with torch.no_grad():
        theirs = reference(batch["gene_ids"], batch["bins"], batch["mask"], 6000)
        ours = model.encoder(batch["gene_ids"], batch["bins"], batch["mask"])
        alone = torch.stack(
            [model.encoder(*(pad_batch([c], N_GENES, TokenConfig())[k] for k in ("gene_ids", "bins", "mask")))[0, 0] for c in cells]
        )
    assert max((ours[i, : len(g) + 1] - theirs[i, : len(g) + 1]).abs().max().item() for i, (g, _) in enumerate(cells)) < 1e-5
    assert 1e-6 < (alone - ours[:, 0]).abs().max().item() < 5e-3  # [CLS] alone vs in its batch: measured 4.9e-4 with these weights

    from celllm.embed import embed_tokens
    from celllm.tokens import TokenizedCells

    # celllm embed's batches for a released model: 32 at a time in the data's order (not sorted by length, as for
    # this project's encoder), so the 32 cells give their batch's own [CLS]; one at a time does not
    tokenized = TokenizedCells(
        np.concatenate([[0], np.cumsum([len(g) for g, _ in cells])]),
        np.concatenate([g for g, _ in cells]).astype(np.int64),
        np.concatenate([b for _, b in cells]).astype(np.int64),
    )
    assert np.abs(embed_tokens(model.encoder, tokenized, cfg.tokens) - ours[:, 0].numpy()).max() < 1e-5
    assert np.abs(embed_tokens(model.encoder, tokenized, cfg.tokens, batch_size=1) - ours[:, 0].numpy()).max() > 1e-6


def test_the_paper_size_key_set_and_shapes():
    torch.manual_seed(0)
    state = released_state_dict(ReleasedCellLM(**PAPER_SIZES))
    parameters = sum(
        v.numel() for k, v in state.items() if k != "performer.calls_since_last_redraw" and not k.endswith("projection_matrix")
    )
    assert len(state) == 147 and parameters == 51_926_536 and state["pos_emb.emb.weight"].dtype == torch.float64
    sizes = released_sizes(state, "paper")
    assert sizes == {"n_genes": 19_379, "dim": 512, "depth": 10, "heads": 16, "dim_head": 64, "nb_features": 266, "ff_width": 2048}

    from celllm.pretrain.model import CellLMForPretraining
    from celllm.released import released_config, released_weights

    model = CellLMForPretraining(19_379, released_config(sizes))
    model.load_state_dict(released_weights(state, model))
    trainable = [*model.encoder.layers[-1].parameters(), *model.encoder.norm.parameters()]
    assert sum(p.numel() for p in trainable) == 4_200_448  # the released fine-tuning recipe: last layer + final norm


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda s: s.pop("norm.bias"), "missing key 'norm.bias'"),
        (lambda s: s.update({"extra.weight": torch.zeros(1)}), "unexpected key 'extra.weight'"),
        (
            lambda s: s.update({"performer.net.layers.1.0.fn.to_k.weight": torch.zeros(16, 8)}),
            "key 'performer.net.layers.1.0.fn.to_k.weight' has shape (16, 8), expected (16, 16)",
        ),
        (lambda s: s.pop("token_emb.weight"), "missing key 'token_emb.weight' (not a released CellLM state dict?)"),
    ],
    ids=["missing", "extra", "shape", "not-released"],
)
def test_a_spoilt_state_dict_is_named_and_nothing_is_written(released, tmp_path, spoil, message):
    folder, reference = released
    state = released_state_dict(reference)
    spoil(state)
    torch.save({"model_state_dict": state}, tmp_path / "bad.pth")
    with pytest.raises(InputError) as error:
        import_released(tmp_path / "bad.pth", folder / "genes.txt", tmp_path / "out", max_len=MAX_LEN)
    assert message in str(error.value) and "bad.pth" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_a_gene_list_saved_with_a_byte_order_mark_and_crlf_loses_no_gene(tmp_path):
    """Spreadsheet exports start with a UTF-8 byte-order mark and end lines with CRLF (issue 21)."""
    from celllm.released import read_gene_order
    from celllm.tokens import Vocabulary

    (tmp_path / "genes.txt").write_bytes(b"\xef\xbb\xbfHES4\r\nTNFRSF4\r\nSSU72\r\n")
    assert read_gene_order(tmp_path / "genes.txt", 3) == ["HES4", "TNFRSF4", "SSU72"]
    assert Vocabulary.load(tmp_path / "genes.txt").genes == ["HES4", "TNFRSF4", "SSU72"]


def test_gene_files_and_pickles_are_checked(released, tmp_path, capsys):
    folder, _ = released
    pth = str(folder / "checkpoint4_fixed.pth")
    (tmp_path / "short.txt").write_text("G0\nG1\n")
    (tmp_path / "twice.txt").write_text("".join(f"G{i % 49}\n" for i in range(N_GENES)))
    import argparse

    torch.save(
        {"model_state_dict": {"token_emb.weight": torch.zeros(8, 16)}, "args": argparse.Namespace(lr=1)}, tmp_path / "pickle.pth"
    )  # not only tensors
    cases = [
        ([pth, "--genes", str(tmp_path / "short.txt")], "short.txt: 2 genes, but the checkpoint's gene table has 50 rows"),
        ([pth, "--genes", str(tmp_path / "twice.txt")], "gene 'G0' is listed twice (lines 1 and 50)"),
        ([str(tmp_path / "pickle.pth"), "--genes", str(tmp_path / "short.txt")], "not a readable PyTorch checkpoint of tensors only"),
        ([str(tmp_path / "nothere.pth"), "--genes", str(tmp_path / "short.txt")], "released checkpoint not found"),
    ]
    for argv, message in cases:
        assert main(["import-released", *argv, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "out").exists()


def test_gene_symbols_are_mapped_and_the_mapping_reported(tmp_path):
    genes = ["SEPT7", "MARCH1", "A1BG", "NOVEL9", "ENSG00000145416"]  # old symbols, an approved one, an unknown, an Ensembl id of MARCHF1
    write_released_checkpoint(tmp_path / "r.pth", len(genes), **TINY)
    write_h5ad(
        ad.AnnData(sp.csr_matrix(np.ones((1, len(genes)), dtype=np.float32) * 2), var=pd.DataFrame(index=genes)), tmp_path / "order.h5ad"
    )
    report = import_released(
        tmp_path / "r.pth", tmp_path / "order.h5ad", tmp_path / "m", hgnc=write_hgnc(tmp_path / "hgnc.txt", HGNC_GENES)
    )
    vocab = load_checkpoint(tmp_path / "m")[1].genes
    assert vocab == ["SEPTIN7", "MARCHF1", "A1BG", "NOVEL9", "ENSG00000145416"]  # MARCHF1 is taken by row 2: row 5 keeps its name
    assert report["genes"] == {"file": str(tmp_path / "order.h5ad"), "mapped": True, "renamed": 2, "unknown": 1, "kept_for_a_clash": 1}
    assert json.loads((tmp_path / "m" / "released.json").read_text())["released_parameters"] > 0


def test_embed_pbmc68k_with_the_imported_model(tmp_path, capsys):
    """`celllm import-released` then `celllm embed` on scanpy's pbmc68k_reduced, end to end."""
    from ingest.pbmc import load_pbmc68k_reduced

    cells = load_pbmc68k_reduced()
    write_h5ad(cells, tmp_path / "pbmc.h5ad")
    genes = list(cells.var_names[::-1])  # the released order is the file's, whatever it is
    (tmp_path / "genes.txt").write_text("\n".join(genes) + "\n")
    write_released_checkpoint(tmp_path / "checkpoint4_fixed.pth", len(genes), **TINY)
    assert (
        main(
            [
                "import-released",
                str(tmp_path / "checkpoint4_fixed.pth"),
                "--genes",
                str(tmp_path / "genes.txt"),
                "--out",
                str(tmp_path / "released"),
            ]
        )
        == 0
    )
    assert "imported" in capsys.readouterr().out
    assert (
        main(
            [
                "embed",
                str(tmp_path / "pbmc.h5ad"),
                "--checkpoint",
                str(tmp_path / "released"),
                "--out",
                str(tmp_path / "out.h5ad"),
                "--quiet",
            ]
        )
        == 0
    )
    embedded = ad.read_h5ad(tmp_path / "out.h5ad")
    assert embedded.obsm["X_celllm"].shape == (700, 16) and np.isfinite(embedded.obsm["X_celllm"]).all()
    assert embedded.obsm["X_celllm"].std(axis=0).min() > 0  # cells differ
