"""What the CellLM models share, public for any model that builds on CellLM:
`cell_embeddings` (a checkpoint's cell embeddings, from the run's cache) and the
frozen-encoder heads (`LinearProbe`, `FrozenCellLM`).

A helper, not a model: it registers nothing, so the registry's discovery, which imports every
module of benchmarks.models, finds no model here (benchmarks.registry.HELPERS names it).
"""

from __future__ import annotations

from functools import lru_cache

import anndata as ad
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.tasks.data import PairData
from celllm.checkpoint import checkpoint_hash
from celllm.embed import OBSM_KEY, CellEmbedder
from celllm.errors import InputError

C_GRID = (0.01, 0.1, 1.0, 10.0)


@lru_cache(maxsize=4)
def _cached(path: str, checkpoint: str) -> tuple[dict, np.ndarray]:
    cache = ad.read_h5ad(path)
    made_by = cache.uns.get("celllm", {}).get("checkpoint_sha256")
    if OBSM_KEY not in cache.obsm or made_by != checkpoint_hash(checkpoint):
        raise InputError(f"{path}: no .obsm['{OBSM_KEY}'] made by the checkpoint {checkpoint}; re-run `celllm embed`")
    return {name: row for row, name in enumerate(cache.obs_names.astype(str))}, np.asarray(cache.obsm[OBSM_KEY], dtype=np.float32)


@lru_cache(maxsize=2)
def _embedder(checkpoint: str, device: str) -> CellEmbedder:
    return CellEmbedder(checkpoint, device=device)


def cell_embeddings(adata: ad.AnnData, context) -> np.ndarray:
    """CellLM cell embeddings (encoder.embed) of `adata`'s cells: from the run's cache when it has them, else computed."""
    if context.checkpoint is None:
        raise InputError("a CellLM model needs a checkpoint (ModelContext.checkpoint)")
    names = adata.obs_names.astype(str)
    if context.embeddings is not None:
        rows, matrix = _cached(str(context.embeddings), str(context.checkpoint))
        missing = [n for n in names if n not in rows]
        if not missing:
            return matrix[[rows[n] for n in names]]
    torch.set_num_threads(context.threads)
    return _embedder(str(context.checkpoint), context.device)(adata)[0]


class LinearProbe:
    """Multinomial logistic regression on standardised embeddings; C picked on validation macro F1, never on test."""

    def __init__(self, seed, context):
        self.seed, self.context, self.model = seed, context, None

    def _head(self, C):
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=self.seed))

    def fit(self, train, val):
        x_train = cell_embeddings(train.adata, self.context)
        best_score, best_C = -1.0, C_GRID[0]
        if len(val):
            x_val = cell_embeddings(val.adata, self.context)
            for C in C_GRID:
                score = f1_score(val.labels, self._head(C).fit(x_train, train.labels).predict(x_val), average="macro")
                if score > best_score:
                    best_score, best_C = score, C
        self.model = self._head(best_C).fit(x_train, train.labels)
        self.classes_ = self.model.classes_

    def predict(self, data):
        return self.model.predict(cell_embeddings(data.adata, self.context))

    def predict_proba(self, data):
        return self.model.predict_proba(cell_embeddings(data.adata, self.context))


def _embedding_drug_response(seed, context):
    from benchmarks.models._drug_response import GraphDrugResponseModel  # torch-geometric only when needed

    class EmbeddingDrugResponse(GraphDrugResponseModel):
        """The released drug-response recipe: CellLM's cell-line embedding beside the GIN drug encoder."""

        def cell_features(self, data):
            return cell_embeddings(data.cell_lines, self.context)

    return EmbeddingDrugResponse(seed, context)


class FrozenCellLM:
    """A frozen CellLM encoder with a trained head: a linear probe for cells, the GIN network for (cell line, drug) pairs."""

    def __init__(self, seed, context):
        self.seed, self.context, self.head = seed, context, None

    def fit(self, train, val):
        make = _embedding_drug_response if isinstance(train, PairData) else LinearProbe
        self.head = make(self.seed, self.context)
        self.head.fit(train, val)
        self.classes_ = getattr(self.head, "classes_", None)

    def predict(self, data):
        return self.head.predict(data)

    def predict_proba(self, data):
        return self.head.predict_proba(data)

    def embed(self, data) -> np.ndarray:
        """The cell embedding of every cell (the zero-shot embedding task), from the run's cache."""
        return cell_embeddings(data.adata, self.context)


ALL_TASKS = ("annotation", "drug_sensitivity", "drug_response", "embedding")
