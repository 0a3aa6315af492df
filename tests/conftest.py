"""Shared fixtures: tiny datasets, a tiny config and a tiny pretrained checkpoint."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from celllm.config import CellLMConfig
from celllm.io import write_h5ad

TINY_MODEL = {
    "encoder": {"dim": 16, "depth": 2, "heads": 2, "dim_head": 8, "ff_mult": 2, "nb_features": 8, "feature_redraw_interval": 2},
    "tokens": {"max_len": 40},
    "pretrain": {"batch_size": 8, "sub_batch_size": 8, "max_steps": 3, "warmup_steps": 1, "proj_dim": 8, "lr": 1e-3},
}


def make_counts(n_cells=40, n_genes=30, seed=0, labels=("a", "b"), label_column="cell_type", tissue=True) -> ad.AnnData:
    """Random sparse counts whose expression depends on the label, with gene names G0.."""
    rng = np.random.default_rng(seed)
    y = np.array(labels)[np.arange(n_cells) % len(labels)]
    means = rng.gamma(0.5, 2.0, size=(len(labels), n_genes))
    counts = rng.poisson(means[np.arange(n_cells) % len(labels)]).astype(np.float32)
    obs = pd.DataFrame({label_column: pd.Categorical(y)}, index=[f"cell{i}" for i in range(n_cells)])
    if tissue:
        obs["tissue"] = np.where(np.arange(n_cells) % 2 == 0, "tumor", "normal")
    return ad.AnnData(sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]))


@pytest.fixture
def tiny_config() -> CellLMConfig:
    return CellLMConfig.from_dict(TINY_MODEL)


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.h5ad"
    write_h5ad(make_counts(n_cells=48, seed=1), path)
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, corpus_path):
    from celllm.pretrain.corpus import load_corpus
    from celllm.pretrain.trainer import pretrain

    cfg = CellLMConfig.from_dict(TINY_MODEL)
    out = tmp_path_factory.mktemp("ckpt") / "model"
    return pretrain(load_corpus([corpus_path], cfg.tokens), out, cfg, progress=False)
