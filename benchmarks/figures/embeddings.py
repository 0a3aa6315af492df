"""UMAP of cached CellLM embeddings beside a UMAP of the same cells' log-normalised expression.

Reads an embedded dataset (`celllm embed` output: counts in .X, the embedding in
obsm["X_celllm"], labels in .obs). Writes PNG + PDF through `style.save` and
returns the (closed) figure; raises `InputError` naming the file for a missing
or malformed input.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc
from matplotlib.lines import Line2D

from benchmarks.figures import style
from benchmarks.figures.style import as_bool
from celllm.errors import InputError
from celllm.io import read_dataset

EMBEDDING = "X_celllm"
MAX_PCS = 50
MAX_NEIGHBORS = 15


def _umap(representation: np.ndarray, seed: int) -> np.ndarray:
    """2-D UMAP of `representation` (cells x features): kNN graph, then UMAP, both seeded."""
    cells = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(len(representation))]), obsm={"rep": representation})
    sc.pp.neighbors(cells, n_neighbors=max(2, min(MAX_NEIGHBORS, len(representation) - 1)), use_rep="rep", random_state=seed)
    sc.tl.umap(cells, random_state=seed)
    return cells.obsm["X_umap"]


def _expression_pcs(adata: ad.AnnData, seed: int) -> tuple[np.ndarray, int]:
    """normalize_total (1e4) + log1p + PCA with at most 50 components."""
    expression = ad.AnnData(adata.X.copy())
    sc.pp.normalize_total(expression, target_sum=1e4)
    sc.pp.log1p(expression)
    n_comps = min(MAX_PCS, expression.n_obs - 1, expression.n_vars - 1)
    if n_comps < 2:
        return np.asarray(expression.X.toarray() if hasattr(expression.X, "toarray") else expression.X), 0
    sc.pp.pca(expression, n_comps=n_comps, random_state=seed)
    return expression.obsm["X_pca"], n_comps


def _palette(n: int) -> list:
    if n <= 10:
        return list(plt.get_cmap("tab10").colors)[:n]
    if n <= 20:
        cmap = plt.get_cmap("tab20").colors
        return [cmap[i] for i in list(range(0, 20, 2)) + list(range(1, 20, 2))][:n]  # the 10 strong shades first
    import seaborn as sns

    return sns.color_palette("husl", n)


def plot_umap(embedded_h5ad, png, color: str = "cell_type", seed: int = 0):
    """Two panels: UMAP of obsm['X_celllm'] and UMAP of log-normalised expression (PCA <= 50), coloured by obs[color]."""
    path = Path(embedded_h5ad)
    adata = read_dataset(path)
    if EMBEDDING not in adata.obsm:
        raise InputError(f"{path}: no obsm['{EMBEDDING}'] (embed the dataset with `celllm embed` first)")
    embedding = np.asarray(adata.obsm[EMBEDDING], dtype=np.float64)
    if embedding.ndim != 2 or embedding.shape[0] != adata.n_obs or not np.isfinite(embedding).all():
        raise InputError(f"{path}: obsm['{EMBEDDING}'] must be a finite cells x dimensions matrix, got shape {embedding.shape}")
    if color not in adata.obs.columns:
        raise InputError(f"{path}: no column '{color}' in .obs to colour by (has: {', '.join(map(str, adata.obs.columns)) or 'none'})")
    if adata.n_obs < 4:
        raise InputError(f"{path}: {adata.n_obs} cells are too few for a UMAP (need at least 4)")

    pcs, n_comps = _expression_pcs(adata, seed)
    layouts = [_umap(embedding, seed), _umap(pcs, seed)]
    titles = [f"CellLM embedding\n({EMBEDDING}, {embedding.shape[1]} dims)",
              f"log-normalised expression\n({adata.n_vars} genes, " + (f"PCA {n_comps})" if n_comps else "no PCA)")]

    style.setup()
    values = adata.obs[color]
    categorical = not pd.api.types.is_numeric_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype)
    size = float(np.clip(6000 / adata.n_obs, 3, 18))  # points stay visible at print size, large sets stay readable
    figure, axes = plt.subplots(1, 2, figsize=(7.0, 3.9), layout="constrained")
    rng = np.random.default_rng(seed)
    order = rng.permutation(adata.n_obs)  # draw cells in random order so no group hides another
    if categorical:
        labels = values.astype("category") if not isinstance(values.dtype, pd.CategoricalDtype) else values
        categories = [c for c in labels.cat.categories if (labels == c).any()]
        colours = dict(zip(categories, _palette(len(categories))))
        point_colours = np.array([colours.get(v, (0.7, 0.7, 0.7)) if not pd.isna(v) else (0.7, 0.7, 0.7) for v in labels], dtype=float)
        for ax, xy in zip(axes, layouts):
            ax.scatter(xy[order, 0], xy[order, 1], c=point_colours[order], s=size, alpha=0.8, edgecolors="none", rasterized=True)
        handles = [Line2D([], [], marker="o", linestyle="none", markersize=5, color=colours[c], label=f"{c} (n={int((labels == c).sum())})")
                   for c in categories]
        if labels.isna().any():
            handles.append(Line2D([], [], marker="o", linestyle="none", markersize=5, color=(0.7, 0.7, 0.7), label=f"n/a (n={int(labels.isna().sum())})"))
        longest = max(len(h.get_label()) for h in handles)
        ncol = max(1, min(len(handles), 5 if longest <= 16 else 4 if longest <= 22 else 3))
        figure.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False, title=color, fontsize=8,
                      title_fontsize=9, handletextpad=0.3, columnspacing=1.0)
    else:
        numbers = values.to_numpy(dtype=float)
        for ax, xy in zip(axes, layouts):
            points = ax.scatter(xy[order, 0], xy[order, 1], c=numbers[order], s=size, cmap="viridis", vmin=np.nanmin(numbers),
                                vmax=np.nanmax(numbers), edgecolors="none", rasterized=True, plotnonfinite=True)
        figure.colorbar(points, ax=list(axes), label=color, shrink=0.8)
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_box_aspect(1)
        ax.grid(False)
    dataset = str(adata.uns.get("dataset", path.stem))
    simulated = adata.uns.get("simulated")
    provenance = "" if simulated is None else (" (simulated)" if as_bool(simulated) else " (real data)")
    figure.suptitle(f"{dataset}{provenance}: {adata.n_obs} cells coloured by {color} (UMAP seed {seed})")
    style.save(figure, png)
    return figure
