"""The token store: tokenized once in blocks, memory-mapped, identical to tokenizing in memory,
refused for another vocabulary or tokens config; pretraining from it gives the same weights."""

import json

import numpy as np
import pytest
import torch

from celllm.checkpoint import load_checkpoint
from celllm.cli import main
from celllm.config import CellLMConfig
from celllm.errors import InputError
from celllm.io import write_h5ad
from celllm.pretrain.corpus import load_corpus
from celllm.pretrain.store import TokenStore, build_token_store, gene_id_dtype
from celllm.pretrain.trainer import pretrain
from celllm.tokens import TokenConfig, Vocabulary
from tests.fixtures.data import TINY_MODEL, make_counts
from tests.fixtures.training import killed_at_step


@pytest.fixture
def two_files(tmp_path):
    write_h5ad(make_counts(n_cells=30, seed=1), tmp_path / "a.h5ad")
    write_h5ad(make_counts(n_cells=17, seed=2, tissue=False), tmp_path / "b.h5ad")
    return [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]


def test_a_store_holds_the_tokens_of_in_memory_tokenizing(two_files, tmp_path):
    cfg = TokenConfig(max_len=12)  # some cells are cut
    vocab = Vocabulary.from_datasets(two_files)
    store_path = build_token_store(two_files, tmp_path / "corpus.tokens", vocab, cfg, block_cells=7, progress=False)  # 7 blocks
    store = TokenStore.open(store_path, vocab, cfg)
    memory = load_corpus(two_files, cfg, vocab)
    assert np.array_equal(store.cells.indptr, memory.cells.indptr)
    assert np.array_equal(store.cells.gene_ids, memory.cells.gene_ids) and np.array_equal(store.cells.bins, memory.cells.bins)
    assert np.array_equal(store.tissue, memory.tissue) and (store.tissue[30:] == -100).all()
    assert isinstance(store.cells.gene_ids, np.memmap) and store.cells.gene_ids.dtype == np.uint8  # 30 genes + [CLS], PAD fit a byte
    assert store.cells.bins.dtype == np.uint8 and store.manifest["n_truncated_cells"] == memory.cells.n_truncated_cells > 0
    files = ["offsets.bin", "gene_ids.bin", "bins.bin", "tissue.bin"]
    assert sum((store_path / f).stat().st_size for f in files) / store.manifest["n_tokens"] < 4
    store.verify()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5ad", "b.h5ad", "corpus.tokens"]  # written atomically, nothing left over
    assert [gene_id_dtype(n) for n in (254, 255, 19_379, 70_000)] == [np.uint8, np.uint16, np.uint16, np.uint32]


def test_a_store_is_refused_for_another_vocabulary_or_tokens_config_or_damage(two_files, tmp_path):
    cfg, vocab = TokenConfig(), Vocabulary.from_datasets(two_files)
    path = build_token_store(two_files, tmp_path / "s", vocab, cfg, progress=False)
    with pytest.raises(InputError, match="built with another gene vocabulary"):
        TokenStore.open(path, Vocabulary(vocab.genes[::-1]), cfg)
    with pytest.raises(InputError, match=r"built with other tokens options than this run's \(max_len 6000 -> 100\)"):
        TokenStore.open(path, vocab, TokenConfig(max_len=100))
    (path / "bins.bin").write_bytes((path / "bins.bin").read_bytes()[:-1])
    with pytest.raises(InputError, match="bins.bin: .* the store is incomplete or damaged"):
        TokenStore.open(path)
    path = build_token_store(two_files, tmp_path / "t", vocab, cfg, progress=False)
    flipped = bytearray((path / "gene_ids.bin").read_bytes())
    flipped[0] ^= 1
    (path / "gene_ids.bin").write_bytes(bytes(flipped))
    with pytest.raises(InputError, match="gene_ids.bin: not the file this token store was written with"):
        TokenStore.open(path).verify()


def test_pretraining_from_a_store_equals_pretraining_from_the_files(two_files, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY_MODEL))
    args = ["--config", str(config), "--max-steps", "3", "--quiet"]
    assert (
        main(
            [
                "tokenize",
                *[x for f in two_files for x in ("--data", str(f))],
                "--out",
                str(tmp_path / "corpus.tokens"),
                "--config",
                str(config),
                "--block-cells",
                "10",
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["pretrain", "--data", str(tmp_path / "corpus.tokens"), "--out", str(tmp_path / "from_store"), *args]) == 0
    assert main(["pretrain", *[x for f in two_files for x in ("--data", str(f))], "--out", str(tmp_path / "from_files"), *args]) == 0
    a, b = load_checkpoint(tmp_path / "from_store")[0].state_dict(), load_checkpoint(tmp_path / "from_files")[0].state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    capsys.readouterr()
    assert (
        main(["pretrain", "--data", str(tmp_path / "corpus.tokens"), "--data", str(two_files[0]), "--out", str(tmp_path / "x"), *args]) == 2
    )
    assert "a token store is the whole corpus" in capsys.readouterr().err


def test_resume_from_a_store_reaches_the_same_weights(two_files, tmp_path, monkeypatch):
    cfg = CellLMConfig.from_dict(TINY_MODEL).with_pretrain(max_steps=4, checkpoint_every=2)
    vocab = Vocabulary.from_datasets(two_files)
    path = build_token_store(two_files, tmp_path / "s", vocab, cfg.tokens, progress=False)
    straight = pretrain(load_corpus([path], cfg.tokens), tmp_path / "straight", cfg, progress=False)

    with killed_at_step(monkeypatch, 3), pytest.raises(KeyboardInterrupt):
        pretrain(load_corpus([path], cfg.tokens), tmp_path / "resumed", cfg, progress=False)
    resumed = pretrain(load_corpus([path], cfg.tokens), tmp_path / "resumed", cfg, resume=True, progress=False)
    a, b = load_checkpoint(straight)[0].state_dict(), load_checkpoint(resumed)[0].state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_views_depend_on_the_cell_not_on_the_batch(two_files):
    """Each rank makes only its own cells' views: a cell's views must not depend on the other cells of its step."""
    from celllm.pretrain.objectives import make_views

    cfg = TokenConfig()
    corpus = load_corpus(two_files, cfg)
    whole = make_views(corpus.cells, np.arange(20), corpus.tissue, 3, 7, 0.8, 0.3, cfg)
    shard = make_views(corpus.cells, np.arange(20)[1::4], corpus.tissue, 3, 7, 0.8, 0.3, cfg)
    mine = whole.cells(np.arange(20)[1::4])
    for name in ("indptr", "genes", "bins", "targets", "tissue", "seeds"):
        assert np.array_equal(getattr(shard, name), getattr(mine, name)), name
    other_step = make_views(corpus.cells, np.arange(20), corpus.tissue, 3, 8, 0.8, 0.3, cfg)
    assert not np.array_equal(other_step.seeds, whole.seeds)
    lengths = np.diff(whole.indptr)
    assert (lengths > 0).all() and (whole.targets[whole.bins == cfg.mask_bin] >= 0).all()
    assert 0.7 < lengths.sum() / (2 * corpus.cells.lengths()[:20].sum()) < 0.9  # about `keep` of the genes
