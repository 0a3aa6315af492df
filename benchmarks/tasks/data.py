"""What a model sees of a dataset: the cells of one split and their labels."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import anndata as ad
import numpy as np
import scipy.sparse as sp

from celllm.preprocess import log_normalize


@dataclass
class TaskData:
    adata: ad.AnnData  # counts (standard contract), the cells of one split
    labels: np.ndarray  # one label per cell

    def __len__(self) -> int:
        return self.adata.n_obs

    @cached_property
    def log_normalized(self) -> sp.csr_matrix:
        """normalize_total to 1e4 then log1p: the usual input of linear baselines."""
        return log_normalize(self.adata.X)
