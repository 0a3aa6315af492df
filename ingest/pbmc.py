"""scanpy's `pbmc68k_reduced`: 700 real cells of Zheng68k in the standard contract.

scanpy ships this subset of the 10x fresh 68k PBMC data (Zheng et al. 2017)
with ten FACS-sorted population labels (`bulk_labels`). Its `.raw` holds
log1p of size-normalised values over 765 genes, so expm1 returns the count
scale (size-normalised, not integer counts; recorded in `.uns`).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

DATASET = "pbmc68k_reduced"
LABELS = ("cell_type",)  # .obs columns a task can predict


def load_pbmc68k_reduced() -> ad.AnnData:
    import scanpy as sc  # heavy import, only needed here

    source = sc.datasets.pbmc68k_reduced()
    raw = source.raw.to_adata()
    X = sp.csr_matrix(raw.X, dtype=np.float32)
    np.expm1(X.data, out=X.data)
    obs = pd.DataFrame({"cell_type": source.obs["bulk_labels"].astype(str).astype("category")}, index=source.obs_names.astype(str))
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=raw.var_names.astype(str)))
    adata.uns.update(
        dataset=DATASET,
        simulated=False,
        count_scale="size_normalised",
        source="scanpy.datasets.pbmc68k_reduced: 700-cell subset of Zheng et al. 2017 (10x fresh 68k PBMCs), .raw expm1-transformed",
    )
    return adata
