"""The recipe study's pretraining options (pooling, projection, view augmentations) and its scoring and table."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import recipe
from celllm.config import CellLMConfig
from celllm.model import CellLMEncoder
from celllm.model.encoder import EncoderConfig
from celllm.pretrain.corpus import load_corpus
from celllm.pretrain.dnc import StepSetup, divide_and_conquer_step, full_batch_step
from celllm.pretrain.model import CellLMForPretraining
from celllm.pretrain.objectives import IGNORE, LossWeights, make_views
from celllm.tokens import TokenConfig, TokenizedCells


def _cells(n_cells=400, n_genes=60, n_bins=6, seed=0) -> TokenizedCells:
    """Cells of 30 to 59 genes whose bins run over every expression bin."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(30, n_genes, n_cells)
    genes = np.concatenate([np.sort(rng.choice(n_genes, k, replace=False)) for k in lengths])
    bins = rng.integers(0, n_bins, lengths.sum())
    return TokenizedCells(np.concatenate([[0], np.cumsum(lengths)]), genes, bins)


def _tokens_cfg(n_bins=6):
    return TokenConfig(n_bins=n_bins)


def _kept_by_bin(views, cells, n_bins):
    """Share of each bin's tokens that the views kept (every view keeps a subset of its cell's tokens)."""
    total = np.bincount(np.asarray(cells.bins, dtype=np.int64), minlength=n_bins) * 2  # two views per cell
    kept_true = np.where(views.targets != IGNORE, views.targets, views.bins)  # unmasked bins are the true ones here
    return np.bincount(kept_true, minlength=n_bins) / total


def test_low_expression_dropout_drops_weak_genes_more_and_keeps_the_share():
    cells, cfg = _cells(), _tokens_cfg()
    indices = np.arange(len(cells))
    uniform = make_views(cells, indices, np.zeros(len(cells)), 0, 0, 0.6, 0.0, cfg)
    weighted = make_views(cells, indices, np.zeros(len(cells)), 0, 0, 0.6, 0.0, cfg, drop="low_expression")
    n_tokens = 2 * len(cells.gene_ids)
    assert len(uniform.genes) / n_tokens == pytest.approx(0.6, abs=0.01)
    assert len(weighted.genes) / n_tokens == pytest.approx(0.6, abs=0.02)  # the cell's share is kept
    by_bin_uniform, by_bin = _kept_by_bin(uniform, cells, 6), _kept_by_bin(weighted, cells, 6)
    assert np.ptp(by_bin_uniform) < 0.03  # uniform: every bin alike
    assert np.all(np.diff(by_bin) > 0.05)  # weighted: each higher bin kept more often than the one below
    # drop chance (1 - keep) * (6 - bin) / mean over the cell's bins (3.5 for uniform bins): bin 0 about 0.31 kept
    assert by_bin[0] == pytest.approx(1 - 0.4 * 6 / 3.5, abs=0.03)


def test_bin_noise_moves_a_share_of_unmasked_bins_by_one():
    cells, cfg = _cells(), _tokens_cfg()
    indices = np.arange(len(cells))
    clean = make_views(cells, indices, np.zeros(len(cells)), 3, 5, 0.8, 0.2, cfg)
    noisy = make_views(cells, indices, np.zeros(len(cells)), 3, 5, 0.8, 0.2, cfg, bin_noise=0.3)
    np.testing.assert_array_equal(noisy.genes, clean.genes)  # the same genes kept and masked
    np.testing.assert_array_equal(noisy.targets, clean.targets)  # the targets stay the true bins
    masked = clean.targets != IGNORE
    np.testing.assert_array_equal(noisy.bins[masked], clean.bins[masked])
    moved = noisy.bins != clean.bins
    assert not moved[masked].any()
    assert np.all(np.abs(noisy.bins[moved] - clean.bins[moved]) == 1)
    assert noisy.bins[~masked].min() >= 0 and noisy.bins[~masked].max() <= cfg.n_bins - 1
    # clipping at the ends keeps a few draws in place, so the moved share is a little under 0.3
    assert 0.25 < moved[~masked].mean() < 0.31
    # a shard of the batch (another rank) makes the same views of its cells
    shard = make_views(cells, indices[1::4], np.zeros(len(cells)), 3, 5, 0.8, 0.2, cfg, bin_noise=0.3)
    np.testing.assert_array_equal(shard.bins, noisy.cells(np.arange(len(cells))[1::4]).bins)


def test_unknown_view_drop_is_refused():
    with pytest.raises(ValueError, match="drop must be"):
        make_views(_cells(10), np.arange(3), np.zeros(10), 0, 0, 0.8, 0.1, _tokens_cfg(), drop="random")


def test_mean_pooling_averages_the_gene_states_and_ignores_padding():
    encoder = CellLMEncoder(20, 9, EncoderConfig(dim=8, depth=1, heads=2, dim_head=4, nb_features=8, pooling="mean"))
    states = torch.arange(2 * 4 * 8, dtype=torch.float32).reshape(2, 4, 8)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])  # cell 2 holds [CLS] alone
    pooled = encoder.pool(states, mask)
    torch.testing.assert_close(pooled[0], (states[0, 1] + states[0, 2]) / 2)  # written out by hand
    torch.testing.assert_close(pooled[1], states[1, 0])
    # a cell's embedding does not depend on the longer cells padded beside it
    gene_ids, bins = torch.tensor([[20, 3, 7, 0], [20, 5, 0, 0]]), torch.tensor([[6, 1, 2, 0], [6, 3, 0, 0]])
    batch_mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    together = encoder.eval().embed(gene_ids, bins, batch_mask)
    alone = encoder.embed(gene_ids[1:, :2], bins[1:, :2], batch_mask[1:, :2])
    torch.testing.assert_close(together[1:], alone)


def test_mean_pooling_without_projection_keeps_divide_and_conquer_exact(corpus_path, tiny_config):
    cfg = replace(
        tiny_config, encoder=replace(tiny_config.encoder, pooling="mean"), pretrain=replace(tiny_config.pretrain, projection="none")
    )
    corpus = load_corpus([corpus_path], cfg.tokens)
    torch.manual_seed(0)
    model = CellLMForPretraining(len(corpus.vocab), cfg).double().train()
    assert isinstance(model.projection, torch.nn.Identity)
    views = make_views(corpus.cells, np.arange(12), corpus.tissue, 0, 0, 0.8, 0.3, cfg.tokens, bin_noise=0.2)
    setup = StepSetup(len(corpus.vocab), cfg.tokens, LossWeights(), temperature=0.1, sub_batch_size=5)
    full = full_batch_step(model, views, setup)
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    dnc = divide_and_conquer_step(model, views, setup)
    for name, grad in reference.items():
        torch.testing.assert_close(model.get_parameter(name).grad, grad, rtol=1e-9, atol=1e-12)
    assert dnc["loss"] == pytest.approx(full["loss"], rel=1e-9)


def test_every_study_variant_is_a_valid_config_that_changes_only_its_options():
    base = CellLMConfig.from_dict({"pretrain": {"max_steps": 100}})
    for name, (factor, changes) in recipe.STUDY.items():
        cfg = recipe.recipe_config(base, name)
        assert factor in recipe.FACTOR_ORDER
        for section in CellLMConfig.SECTIONS:
            before, after = getattr(base, section).to_dict(), getattr(cfg, section).to_dict()
            changed = {k for k in before if before[k] != after[k]}
            assert changed == {k for k, v in changes.get(section, {}).items() if before[k] != v}, name
    with pytest.raises(ValueError, match="unknown recipe variant 'tempreature'"):
        recipe.recipe_config(base, "tempreature")


def _labelled(n_per_type, types, **columns):
    import anndata as ad

    cell_type = np.repeat(types, n_per_type)
    obs = pd.DataFrame({"cell_type": cell_type, **{k: np.resize(v, len(cell_type)) for k, v in columns.items()}})
    return ad.AnnData(np.zeros((len(cell_type), 1), dtype=np.float32), obs=obs)


def test_an_embedding_that_is_the_cell_type_scores_perfectly_and_a_random_one_does_not():
    types = [f"type_{t:02d}" for t in (0, 1, 2, 16, 17, 18)]
    cells = _labelled(40, types, donor=["donor1", "donor2"])
    corpus = _labelled(40, ["type_00", "type_01"], tissue=["normal", "tumor"])
    pbmc = _labelled(30, ["B", "T", "NK"])
    datasets = {"cells": cells, "corpus": corpus, "pbmc": pbmc}
    assert recipe.unseen_cell_types(cells) == ["type_16", "type_17", "type_18"]

    def one_hot(adata, column="cell_type"):
        codes = pd.Categorical(adata.obs[column]).codes
        rng = np.random.default_rng(0)
        return np.eye(codes.max() + 1)[codes] + 0.01 * rng.normal(size=(len(codes), codes.max() + 1))

    perfect = recipe.score_embeddings(
        {"cells": one_hot(cells), "corpus": one_hot(corpus, "tissue"), "pbmc": one_hot(pbmc)}, datasets, ["type_16", "type_17", "type_18"]
    )
    assert perfect["knn_f1"] == perfect["ari"] == perfect["knn_f1_unseen"] == perfect["validation"] == 1.0
    assert perfect["knn_f1_tissue"] == perfect["pbmc_knn_f1"] == 1.0
    assert perfect["knn_f1_donor"] < 0.7  # the donor is not in it
    rng = np.random.default_rng(1)
    noise = {key: rng.normal(size=(adata.n_obs, 8)) for key, adata in datasets.items()}
    random = recipe.score_embeddings(noise, datasets, ["type_16", "type_17", "type_18"])
    assert random["knn_f1"] < 0.4 and random["ari"] < 0.1


def test_the_table_ranks_by_validation_and_states_the_seed_noise(tmp_path):
    paths = []
    for name, value in (("base", 0.5), ("base_seed1", 0.52), ("base_seed2", 0.48), ("temperature_0.1", 0.7), (recipe.PCA, 0.6)):
        scores = {key: 0.1 for key in recipe.COLUMNS} | {recipe.CHOICE_METRIC: value}
        path = tmp_path / f"{name}.json"
        recipe.write_scores(path, name, scores)
        paths.append(path)
    table = recipe.write_table(paths, tmp_path / "t.csv", tmp_path / "t.md")
    assert list(table["variant"]) == ["temperature_0.1", "pca", "base_seed1", "base", "base_seed2"]
    assert list(table["factor"]) == ["temperature", "yardstick", "seed", "base", "seed"]
    markdown = (tmp_path / "t.md").read_text()
    assert "seed-to-seed standard deviation of that score: 0.020" in markdown
    assert "| 1 | temperature_0.1 | temperature | 0.700 |" in markdown


def test_the_recipe_figure_is_drawn_from_the_table(tmp_path):
    from benchmarks.figures.recipe import plot_recipes

    rows = [
        {"variant": name, "factor": recipe.STUDY[name][0] if name != recipe.PCA else "yardstick"}
        | {key: 0.3 + 0.01 * i for key in recipe.COLUMNS}
        for i, name in enumerate(["base", "base_seed1", "untrained", "steps_25", "steps_200", "temperature_0.1", recipe.CHOSEN, recipe.PCA])
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "recipes.csv", index=False)
    plot_recipes(tmp_path / "recipes.csv", tmp_path / "recipe.png")
    assert (tmp_path / "recipe.png").stat().st_size > 10_000 and (tmp_path / "recipe.pdf").exists()
    pd.DataFrame(rows).drop(columns="mean_cosine").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(Exception, match="bad.csv: no column mean_cosine"):
        plot_recipes(tmp_path / "bad.csv", tmp_path / "bad.png")


def test_the_validation_cells_hold_cell_types_that_pretraining_never_saw(tmp_path):
    from celllm.io import read_dataset
    from ingest.demo import RECIPE_TYPES, write_recipe_datasets
    from ingest.simulate import CORPUS_N_TYPES

    genes = [f"G{i}" for i in range(300)]
    outputs = {"cells": tmp_path / "cells.h5ad", "corpus": tmp_path / "corpus.h5ad"}
    write_recipe_datasets(genes, outputs, seed=0, n_programs=12)
    cells, corpus = read_dataset(outputs["cells"]), read_dataset(outputs["corpus"])
    counts = cells.obs["cell_type"].value_counts()
    assert len(counts) == RECIPE_TYPES and counts.min() > 0.5 * counts.max()  # balanced
    unseen = recipe.unseen_cell_types(cells)
    assert len(unseen) == RECIPE_TYPES - CORPUS_N_TYPES
    assert not set(unseen) & set(corpus.obs["cell_type"].astype(str))
    assert set(cells.obs["donor"]) == {"donor1", "donor2", "donor3"}
    assert set(corpus.obs["tissue"]) == {"normal", "tumor"}


def test_the_configs_default_is_the_studys_choice_and_the_study_starts_from_the_recipe_before_it():
    """config/config.yaml's CellLM is the chosen variant, and the study's base is the recipe it replaced,
    so that `snakemake recipe` gives the same table whatever the default (both configs carry the choice)."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    for name in ("config.yaml", "paper.yaml"):
        configured = CellLMConfig.from_dict(yaml.safe_load((root / "config" / name).read_text())["celllm"])
        assert recipe.recipe_config(configured, recipe.CHOSEN) == configured, name
        base = recipe.recipe_config(configured, "base")
        assert (base.encoder.pooling, base.pretrain.projection, base.pretrain.temperature) == ("cls", "mlp", 0.5)


def test_the_study_refuses_a_real_corpus_in_one_line(tmp_path):
    """The study's held-out cells come from the simulated world, so `snakemake recipe` with the paper
    config (a real corpus) stops before any job with a message naming the corpus."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    args = ["-n", "recipe", "--configfile", str(root / "config" / "paper.yaml"), "--directory", str(tmp_path)]
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), *args], capture_output=True, text=True)
    assert result.returncode != 0
    assert "recipe: the study validates on the simulated world" in result.stdout + result.stderr
    assert "pretrain.corpus is ['panglaodb_human', 'cancerscem']" in result.stdout + result.stderr
    assert not any(tmp_path.joinpath("results").glob("**/*"))  # nothing written
