"""Baseline embedding: 50 principal components of the highly variable genes of log-normalised
expression (cz-benchmarks' and scib's unintegrated baseline)."""

from __future__ import annotations

import numpy as np

from benchmarks.registry import register

N_COMPONENTS = 50
N_TOP_GENES = 2000


@register(
    "pca",
    kind="baseline",
    colour="#d94801",
    tasks=("embedding",),
    summary="PCA (50 components) of the 2,000 most variable genes of log-normalised expression",
    reference="Luecken et al. 2022 (scib); CZI cz-benchmarks",
)
class PCAEmbedding:
    def __init__(self, seed, context):
        self.seed = seed

    def embed(self, data) -> np.ndarray:
        import anndata as ad
        import scanpy as sc

        adata = ad.AnnData(X=data.log_normalized.copy())
        n_top = min(N_TOP_GENES, adata.n_vars)
        # seurat flavour on log data; the components come from scanpy's (deterministic) ARPACK PCA
        sc.pp.highly_variable_genes(adata, n_top_genes=n_top, flavor="seurat")
        n_components = min(N_COMPONENTS, adata.n_obs - 1, int(adata.var["highly_variable"].sum()) - 1)
        sc.pp.pca(adata, n_comps=n_components, mask_var="highly_variable", svd_solver="arpack", random_state=0)
        return adata.obsm["X_pca"]
