"""Shared parts of the drug-response models: a GIN drug encoder paired with a cell-line encoder.

(A leading underscore keeps this module out of the registry: it is not a model.)

The network follows the CellLM paper's drug-response setup (OpenBioMed's DRP
code): deepchem molecular graphs through a 3-layer GIN with max pooling, the
cell line's representation through an MLP, the two concatenated and regressed
to ln IC50 with an MLP; MSE loss, Adam. A subclass of GraphDrugResponseModel
only says how a cell line is represented (`cell_features`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from benchmarks.models._drug_options import DRUG_RESPONSE_OPTIONS
from benchmarks.tasks.data import PairData
from celllm.errors import InputError

if TYPE_CHECKING:
    from torch_geometric.data import Batch

# torch_geometric is imported where a network is built or a batch made: the workflow imports every model
# file each time it parses (benchmarks.registry.discover), and torch_geometric takes over a second.

N_VARIABLE_GENES = 1000


# ----------------------------------------------------------------- networks
def _mlp(*dims: int) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GINDrugEncoder(nn.Module):
    """Graph isomorphism network over atoms, max-pooled to one vector per molecule.

    Batch norm after each layer (as in OpenBioMed's GIN): without it, training
    sat for tens of epochs on the drug-mean plateau, long enough for early
    stopping to give up before the cell line was used.
    """

    def __init__(self, in_dim: int, hidden: int = 128, layers: int = 3):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        from torch_geometric.nn import GINConv

        self.convs = nn.ModuleList(GINConv(_mlp(d_in, hidden, hidden)) for d_in in dims[:-1])
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x, edge_index)))
        from torch_geometric.nn import global_max_pool

        return global_max_pool(x, batch)  # (n_graphs, hidden)


class DrugResponseNet(nn.Module):
    """(cell features, drug graphs) -> ln IC50, one value per (cell row, drug row) pair."""

    def __init__(self, cell_dim: int, drug_in_dim: int, hidden: int = 128):
        super().__init__()
        self.cell_encoder = nn.Sequential(_mlp(cell_dim, hidden, hidden), nn.ReLU())
        self.drug_encoder = GINDrugEncoder(drug_in_dim, hidden)
        self.head = _mlp(2 * hidden, hidden, 1)

    def forward(self, cells: torch.Tensor, drugs: Batch, cell_rows: torch.Tensor, drug_rows: torch.Tensor) -> torch.Tensor:
        # encode each cell line and each drug once, then gather them per pair
        cell_h = self.cell_encoder(cells)[cell_rows]
        drug_h = self.drug_encoder(drugs.x, drugs.edge_index, drugs.batch)[drug_rows]
        return self.head(torch.cat([cell_h, drug_h], dim=1)).squeeze(1)


# ----------------------------------------------------------------- features
def pair_rows(data: PairData) -> tuple[np.ndarray, np.ndarray]:
    """(row of data.cell_lines, row of data.drugs) of each pair; a cell line without expression is an InputError."""
    cells = np.asarray(data.cell_index)
    if (cells < 0).any():
        missing = data.pairs["cell_line"].astype(str).to_numpy()[cells < 0][0]
        raise InputError(f"cell line '{missing}' has pairs but no expression profile")
    return cells, np.asarray(data.drug_index)


def top_variable_genes(train: PairData, n: int = N_VARIABLE_GENES) -> list[str]:
    """The `n` genes whose log expression varies most across the training cell lines (DeepCDR keeps the most variable genes)."""
    variance = train.log_normalized.var(axis=0)
    order = np.argsort(-variance, kind="stable")[:n]  # stable: ties keep gene order, so the choice is reproducible
    return [str(gene) for gene in train.cell_lines.var_names[np.sort(order)]]


def expression_of(data: PairData, genes: list[str]) -> np.ndarray:
    """Log-normalised expression of `genes` for each row of data.cell_lines, float32."""
    columns = data.cell_lines.var_names.get_indexer(genes)
    if (columns < 0).any():
        raise InputError(
            f"gene '{genes[int(np.flatnonzero(columns < 0)[0])]}' of the training cell lines is missing from the cell lines to predict"
        )
    return data.log_normalized[:, columns]


class Standardizer:
    """Per-feature z-score with statistics of the training rows only (a constant feature gets scale 1)."""

    def __init__(self, x: np.ndarray):
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


# ----------------------------------------------------------------- the model
class GraphDrugResponseModel:
    """Base of every model that pairs a cell-line representation with the GIN drug encoder.

    Subclasses implement `cell_features(data)`; they may learn what they need
    from the training split in `fit_cell_features(train)` (called first by fit).
    Options (context.options): epochs, lr, batch_size, patience, hidden.
    """

    OPTIONS = DRUG_RESPONSE_OPTIONS

    def __init__(self, seed, context):
        self.options = {**self.OPTIONS, **(context.options or {})}  # checked by the registry (ModelSpec.resolve_options)
        self.seed, self.context, self.device = int(seed), context, torch.device(context.device)
        torch.set_num_threads(context.threads)
        self.net: DrugResponseNet | None = None
        self.best_epoch: int | None = None

    # --- what a subclass provides
    def fit_cell_features(self, train: PairData) -> None:
        """Learn anything the cell features need from the training cell lines (default: nothing)."""

    def cell_features(self, data: PairData) -> np.ndarray:
        """float32 (n rows of data.cell_lines, d) features of each cell line."""
        raise NotImplementedError

    # --- training
    def fit(self, train: PairData, val: PairData) -> None:
        if len(train) == 0:
            raise InputError("drug response: the training split has no pairs")
        torch.manual_seed(self.seed)
        self.fit_cell_features(train)
        raw = self.cell_features(train)
        self.scale_cells = Standardizer(raw)
        self.y_mean, self.y_std = float(train.values.mean()), float(train.values.std()) or 1.0
        self.net = DrugResponseNet(raw.shape[1], train.drugs.graphs[0].x.shape[1], self.options["hidden"]).to(self.device)

        train_t, val_t = self._tensors(train), self._tensors(val) if len(val) else None
        y = torch.as_tensor((train.values - self.y_mean) / self.y_std, dtype=torch.float32, device=self.device)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.options["lr"])
        shuffle = torch.Generator().manual_seed(self.seed)  # own stream: the order does not depend on other torch use

        # early stopping and the best epoch look at validation pairs only, never test
        best_loss, best_state, self.best_epoch = float("inf"), None, 0
        for epoch in range(1, self.options["epochs"] + 1):
            self._train_epoch(train_t, y, optimizer, shuffle)
            if val_t is None:
                self.best_epoch = epoch  # nothing to select on: train for all epochs
                continue
            loss = self._val_loss(val_t, val.values)
            if loss < best_loss:
                best_loss, best_state, self.best_epoch = loss, copy.deepcopy(self.net.state_dict()), epoch
            elif epoch - self.best_epoch >= self.options["patience"]:
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)

    def _train_epoch(self, tensors, y: torch.Tensor, optimizer, shuffle: torch.Generator) -> None:
        cells, drugs, cell_rows, drug_rows = tensors
        self.net.train()
        for batch in torch.randperm(len(y), generator=shuffle).to(self.device).split(self.options["batch_size"]):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(self.net(cells, drugs, cell_rows[batch], drug_rows[batch]), y[batch])
            loss.backward()
            optimizer.step()

    def _val_loss(self, tensors, values: np.ndarray) -> float:
        return float(np.mean((self._predict_tensors(tensors) - values) ** 2))

    # --- prediction
    def predict(self, data: PairData) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("predict() called before fit()")
        if len(data) == 0:
            return np.zeros(0, dtype=np.float64)
        return self._predict_tensors(self._tensors(data))

    @torch.no_grad()
    def _predict_tensors(self, tensors) -> np.ndarray:
        self.net.eval()
        out = self.net(*tensors).double().cpu().numpy()
        return out * self.y_std + self.y_mean

    def _tensors(self, data: PairData):
        """(standardised cell features, every drug as one graph batch, cell row per pair, drug row per pair)."""
        cell_rows, drug_rows = pair_rows(data)
        cells = torch.as_tensor(self.scale_cells(self.cell_features(data)), device=self.device)
        from torch_geometric.data import Batch

        drugs = Batch.from_data_list(data.drugs.graphs).to(self.device)
        as_long = lambda rows: torch.as_tensor(rows, dtype=torch.long, device=self.device)  # noqa: E731
        return cells, drugs, as_long(cell_rows), as_long(drug_rows)
