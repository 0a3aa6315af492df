"""UMAPs of the zero-shot embeddings of a dataset, every model side by side.

Reads the dataset (.h5ad, labels in .obs) and each model's embedding as its run of the
embedding task saved it (embedding.npy, benchmarks.records), the one that run was scored
on: no model is built or run here. Writes PNG + PDF through `style.save` and returns the
(closed) figure; raises `InputError` naming the file for a missing or malformed input.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from benchmarks.figures import style
from benchmarks.figures.style import as_bool
from benchmarks.records import read_array
from celllm.errors import InputError
from celllm.io import read_dataset

MAX_NEIGHBORS = 15


def _umap(representation: np.ndarray, seed: int) -> np.ndarray:
    """2-D UMAP (umap-learn, which scanpy uses too) of `representation` (cells x features), seeded.
    Called directly: scanpy 1.11's neighbour search fails above 4,096 cells with scipy 1.17."""
    import warnings

    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "n_jobs overridden by setting random_state": seeded, so serial
        # 200 optimisation epochs (umap-learn's choice above 10,000 cells; 500 below): the layout settles, at 40% of the time
        return umap.UMAP(n_neighbors=max(2, min(MAX_NEIGHBORS, len(representation) - 1)), n_epochs=200, random_state=seed).fit_transform(
            representation
        )


def _palette(n: int) -> list:
    if n <= 10:
        return list(plt.get_cmap("tab10").colors)[:n]
    if n <= 20:
        cmap = plt.get_cmap("tab20").colors
        return [cmap[i] for i in list(range(0, 20, 2)) + list(range(1, 20, 2))][:n]  # the 10 strong shades first
    import seaborn as sns

    return sns.color_palette("husl", n)


def _saved_embedding(name: str, path, n_cells: int) -> np.ndarray:
    """A model's embedding as its run saved it, checked to have one finite row per cell of the dataset."""
    if path is None or not Path(path).exists():
        raise InputError(f"{path}: model '{name}' has no saved embedding (run the embedding task first)")
    X = np.asarray(read_array(path, n_cells), dtype=np.float64)
    if not np.isfinite(X).all():
        raise InputError(f"{path}: model '{name}''s embedding has NaN or infinite values")
    return X


def _scatter_categories(ax, xy, values: pd.Series, colours: dict, order, size) -> None:
    point_colours = np.array([colours.get(v, (0.7, 0.7, 0.7)) for v in values.astype(str)], dtype=float)
    ax.scatter(xy[order, 0], xy[order, 1], c=point_colours[order], s=size, alpha=0.8, edgecolors="none", rasterized=True)


def plot_embedding_umaps(data_h5ad, embeddings: dict, png, target: str = "cell_type", batch: str = "donor", seed: int = 0):
    """UMAPs of every model's zero-shot embedding of a dataset side by side, one column per model, coloured by
    `target` (top row) and, where the dataset has two or more, by `batch` (bottom row).

    `embeddings` maps a model to the embedding.npy its run of the embedding task saved (rows in the
    dataset's cell order); `seed` is the run's seed, and seeds the layout.
    """
    path = Path(data_h5ad)
    adata = read_dataset(path)
    if target not in adata.obs.columns:
        raise InputError(f"{path}: no column '{target}' in .obs to colour by (has: {', '.join(map(str, adata.obs.columns)) or 'none'})")
    if adata.n_obs < 4:
        raise InputError(f"{path}: {adata.n_obs} cells are too few for a UMAP (need at least 4)")
    if not embeddings:
        raise InputError("no models given for the embedding UMAPs")
    layouts = {name: _umap(_saved_embedding(name, file, adata.n_obs), seed) for name, file in embeddings.items()}
    colourings = [target] + ([batch] if batch in adata.obs and adata.obs[batch].nunique() >= 2 else [])

    style.setup()
    size = float(np.clip(6000 / adata.n_obs, 2, 14))
    n = len(layouts)
    figure, axes = plt.subplots(
        len(colourings), n, figsize=(2.3 * n + 0.4, 2.5 * len(colourings) + 1.0), squeeze=False, layout="constrained"
    )
    order = np.random.default_rng(seed).permutation(adata.n_obs)  # random drawing order: no group hides another
    for row, column in enumerate(colourings):
        values = adata.obs[column].astype(str)
        categories = list(dict.fromkeys(sorted(values.unique())))
        colours = dict(zip(categories, _palette(len(categories))))
        for ax, (name, xy) in zip(axes[row], layouts.items()):
            _scatter_categories(ax, xy, values, colours, order, size)
            ax.set_title(name if row == 0 else "", fontsize=style.TICK_SIZE + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_box_aspect(1)
            ax.grid(False)
        axes[row, 0].set_ylabel(f"coloured by {column}")
        handles = [
            Line2D([], [], marker="o", linestyle="none", markersize=5, color=colours[c], label=f"{c} (n={int((values == c).sum())})")
            for c in categories
        ]
        axes[row, -1].legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.02, 0.5),
            frameon=False,
            fontsize=7,
            title=column,
            title_fontsize=8,
            handletextpad=0.3,
        )
    dataset = str(adata.uns.get("dataset", path.stem))
    simulated = adata.uns.get("simulated")
    provenance = "" if simulated is None else (" (simulated)" if as_bool(simulated) else " (real data)")
    figure.suptitle(f"Zero-shot embeddings of {dataset}{provenance}: UMAP of each model's embedding of {adata.n_obs} cells (seed {seed})")
    style.save(figure, png)
    return figure
