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


def make_drug_response(n_lines=10, n_genes=30, seed=0, n_drugs=4) -> tuple[ad.AnnData, pd.DataFrame]:
    """Cell-line counts and a complete (line x drug) ln IC50 table that depends on drug and on gene G0."""
    from ingest.simulate import load_drug_table

    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.gamma(2.0, 20.0, size=(n_lines, n_genes))).astype(np.float32)
    lines = [f"LINE-{i}" for i in range(n_lines)]
    cell_lines = ad.AnnData(sp.csr_matrix(counts), obs=pd.DataFrame(index=lines), var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]))
    drugs = load_drug_table().head(n_drugs)
    signal = np.log1p(counts[:, 0])
    pairs = pd.DataFrame([
        {"cell_line": line, "drug": drug.drug, "smiles": drug.smiles, "ln_ic50": 0.5 * d + (d - 1.5) * signal[i] + rng.normal(0, 0.1)}
        for i, line in enumerate(lines) for d, drug in enumerate(drugs.itertuples())
    ])
    return cell_lines, pairs


@pytest.fixture(scope="session")
def drug_response_files(tmp_path_factory):
    """(cell lines .h5ad, response .tsv, drug features .pt) of a tiny drug-response dataset."""
    from benchmarks.drugs import featurize_drugs

    folder = tmp_path_factory.mktemp("drug_response")
    cell_lines, pairs = make_drug_response()
    write_h5ad(cell_lines, folder / "lines.h5ad")
    pairs.to_csv(folder / "lines.response.tsv", sep="\t", index=False)
    featurize_drugs(pairs).save(folder / "lines.drugs.pt")
    return folder / "lines.h5ad", folder / "lines.response.tsv", folder / "lines.drugs.pt"
