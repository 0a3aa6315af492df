"""TGSA's drug-response network TGDRP, and the CellLM authors' released drug-response recipe (TGDRP
with CellLM as its cell encoder). A leading underscore keeps this module out of the registry.

Written from the authors' published code (read, not copied): OpenBioMed's `tasks/mol_task/drp.py`
(the training loop), `models/task_model/drp_model.py` (TGDRP and its ConvPooler),
`models/molecule/gin_tgsa.py`, `models/cell/gat.py`, `configs/drp/TGDRP.json`, `CellLM.json` and
`CellLM_randsplit.json`, `scripts/aidd/drp/celllm.sh` and `tgdrp.sh`; TGSA's (violet-sto/TGSA)
`preprocess_gene.py` and `smiles2graph.py`.

The network:
- drug: TGSA's 77 atom features (`benchmarks.drugs.tgsa_graph`) through 3 GIN layers of width 128
  (ReLU, then batch norm), the three layers' outputs side by side (384), max-pooled over atoms,
  then Linear(384, 256), ReLU, dropout 0.2;
- cell line, one of
  - TGDRP's gene graph: the cell line's genes of TGSA's set (706 Cancer Gene Census genes) with
    three features each (expression, mutation, copy number, in OpenBioMed's order), linked where the
    interaction network scores a pair above 950 (TGSA: STRING > 0.95); 3 x [GAT to width 8, ReLU,
    max-pool over fixed graclus clusters, batch norm without affine]; flattened, then
    Linear(., 1024), ReLU, dropout, Linear(1024, 256), ReLU, dropout;
  - CellLM: the cell line's expression tokenized like any cell; the encoder frozen but for its last
    layer and final norm; each token's final state through Linear(dim, 1) (OpenBioMed's ConvPooler),
    scattered into one place per vocabulary gene plus [CLS] (0 for the genes the line lacks), then
    Linear(n_genes + 1, 1024), ReLU, dropout, Linear(1024, 256), ReLU, dropout;
- head: the two 256-vectors side by side, Linear(512, 512), ELU, dropout, Linear(512, 512), ELU,
  dropout, Linear(512, 1).

Training as drp.py: ln IC50 as it is (not scaled), MSE, Adam (lr 1e-4, no weight decay), batches
of pairs (32 in celllm.sh, 128 in tgdrp.sh), at most 300 epochs, stopping after 10 epochs without
a strictly lower validation RMSE, and predicting with the LAST epoch's weights: drp.py never
reloads the checkpoint its early stopping saves (`restore_best: true` does, as TGSA's own main.py).

Where this differs from the authors' run, and why:
- expression and copy number are z-scored per gene with the training cell lines' statistics
  (TGSA fits its scaler on all 580 lines, test lines included); missing values become the
  training mean (expression: TGSA's mean imputer), a missing mutation profile no mutation;
- graclus is written here (`graclus`): torch-cluster has no build for this torch; the same greedy
  matching (nodes in random order, each joined to a random unmatched neighbour), seeded;
- CellLM's frozen layers run once per cell line (in RELEASED_BATCH-sized batches) rather than for
  every pair batch: the same states but for the released kernel's batch-wide key stabiliser
  (which moves a trained model's states by up to ~0.1, see README) and for the random features, which the authors' training mode redraws
  every 1,000 forward calls and which stay fixed here.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from benchmarks.models._drug_response import pair_rows
from benchmarks.tasks.data import PairData
from celllm.errors import InputError
from celllm.tokens import gene_table_rows, pad_gene_id, pad_ragged

if TYPE_CHECKING:
    from torch_geometric.data import Batch

# torch_geometric is imported where a network is built or a batch made, not with the module: the workflow
# registers every model (and so imports this file) each time it parses, and torch_geometric takes 1.4 s.

OPTIONS = {"epochs": 300, "patience": 10, "lr": 1e-4, "batch_size": 128, "restore_best": False}
DROPOUT = 0.2
DRUG_WIDTH, CELL_WIDTH, HIDDEN = 128, 8, 256
OMICS = ("expression", "mutation", "copy_number")  # OpenBioMed's feature order (EXP, MUT, CNV)


# ----------------------------------------------------------------- networks
def _embedding_mlp(d_in: int, *widths: int) -> nn.Sequential:
    """Linear, ReLU, dropout for each width (TGDRP's drug_emb and cell_emb)."""
    layers: list[nn.Module] = []
    for d_out in widths:
        layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(DROPOUT)]
        d_in = d_out
    return nn.Sequential(*layers)


class TGSADrugEncoder(nn.Module):
    """GIN over TGSA's atom features, every layer's output kept (jumping knowledge, concatenated), max-pooled."""

    def __init__(self, in_dim: int, width: int = DRUG_WIDTH, layers: int = 3):
        super().__init__()
        dims = [in_dim] + [width] * layers
        from torch_geometric.nn import GINConv

        self.convs = nn.ModuleList(GINConv(nn.Sequential(nn.Linear(d, width), nn.ReLU(), nn.Linear(width, width))) for d in dims[:-1])
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(layers))
        self.embed = _embedding_mlp(width * layers, HIDDEN)

    def forward(self, drugs: Batch) -> torch.Tensor:
        x, states = drugs.x, []
        for conv, norm in zip(self.convs, self.norms):
            x = norm(torch.relu(conv(x, drugs.edge_index)))
            states.append(x)
        from torch_geometric.nn import global_max_pool

        return self.embed(global_max_pool(torch.cat(states, dim=1), drugs.batch))


def graclus(edge_index: np.ndarray, n_nodes: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy matching as torch-cluster's graclus on an unweighted graph: visit the nodes in random
    order and join each unmatched one with a random unmatched neighbour. Cluster ids 0..k-1, in order
    of their smallest member (torch_geometric's consecutive_cluster)."""
    neighbours: list[list[int]] = [[] for _ in range(n_nodes)]
    for a, b in edge_index.T:
        neighbours[int(a)].append(int(b))
    cluster = np.full(n_nodes, -1, dtype=np.int64)
    for u in rng.permutation(n_nodes):
        if cluster[u] >= 0:
            continue
        cluster[u] = u
        for v in rng.permutation(neighbours[u]) if neighbours[u] else ():
            if cluster[v] < 0:
                cluster[u] = cluster[v] = min(u, v)
                break
    return np.unique(cluster, return_inverse=True)[1]


def coarsen(edge_index: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """The edges between clusters (as torch_geometric's max_pool: no self-loops, each once)."""
    a, b = cluster[edge_index]
    keep = a != b
    return np.unique(np.stack([a[keep], b[keep]]), axis=1) if keep.any() else np.zeros((2, 0), dtype=np.int64)


class GeneGraphCellEncoder(nn.Module):
    """TGDRP's cell branch: GAT layers over one gene graph shared by every cell line, each followed by
    max pooling over predefined clusters and a batch norm without affine parameters."""

    def __init__(self, edge_index: np.ndarray, n_genes: int, n_features: int, layers: int, rng: np.random.Generator):
        super().__init__()
        self.sizes = [n_genes]
        for i in range(layers):
            cluster = graclus(edge_index, self.sizes[-1], rng)
            self.register_buffer(f"edges{i}", torch.as_tensor(edge_index, dtype=torch.long))
            self.register_buffer(f"cluster{i}", torch.as_tensor(cluster, dtype=torch.long))
            edge_index = coarsen(edge_index, cluster)
            self.sizes.append(int(cluster.max()) + 1)
        from torch_geometric.nn import GATConv

        self.convs = nn.ModuleList(GATConv(n_features if i == 0 else CELL_WIDTH, CELL_WIDTH) for i in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(CELL_WIDTH, affine=False) for _ in range(layers))
        self.embed = _embedding_mlp(CELL_WIDTH * self.sizes[-1], 1024, HIDDEN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (cell lines, genes, features) -> (cell lines, 256)."""
        n_graphs = len(x)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            n, edges, cluster = x.shape[1], getattr(self, f"edges{i}"), getattr(self, f"cluster{i}")
            offsets = (torch.arange(n_graphs, device=x.device) * n)[None, :, None]
            h = torch.relu(conv(x.reshape(n_graphs * n, -1), (edges[:, None, :] + offsets).reshape(2, -1))).reshape(n_graphs, n, -1)
            index = cluster[None, :, None].expand_as(h)
            pooled = h.new_zeros(n_graphs, self.sizes[i + 1], h.shape[-1]).scatter_reduce(1, index, h, "amax", include_self=False)
            x = norm(pooled.reshape(-1, pooled.shape[-1])).reshape(pooled.shape)
        return self.embed(x.reshape(n_graphs, -1))


class TGDRP(nn.Module):
    """(cell-line inputs, drug graphs) of a batch of pairs -> ln IC50."""

    def __init__(self, cell_encoder: nn.Module, drug_in_dim: int):
        super().__init__()
        self.cell_encoder, self.drug_encoder = cell_encoder, TGSADrugEncoder(drug_in_dim)
        self.head = nn.Sequential(
            nn.Linear(2 * HIDDEN, 512), nn.ELU(), nn.Dropout(DROPOUT), nn.Linear(512, 512), nn.ELU(), nn.Dropout(DROPOUT), nn.Linear(512, 1)
        )

    def forward(self, cells, drugs: Batch) -> torch.Tensor:
        return self.head(torch.cat([self.drug_encoder(drugs), self.cell_encoder(cells)], dim=1)).squeeze(1)


# ----------------------------------------------------------------- the recipe
class TGDRPRecipe:
    """Training and prediction as OpenBioMed's drp.py; subclasses say how a cell line enters.

    A subclass implements `prepare(train)` (learn what the cell inputs need from the training
    split, return the cell encoder), `cell_table(data)` (something indexable by a cell line's row
    in data.cell_lines) and `cell_batch(table, rows)` (the encoder's input for those rows).
    Options: epochs, patience, lr, batch_size, restore_best.
    """

    OPTIONS = OPTIONS

    def __init__(self, seed, context):
        self.options = {**self.OPTIONS, **(context.options or {})}  # checked by the registry (ModelSpec.resolve_options)
        self.seed, self.context, self.device = int(seed), context, torch.device(context.device)
        torch.set_num_threads(context.threads)
        self.net: TGDRP | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    # --- what a subclass provides
    def prepare(self, train: PairData) -> nn.Module:
        raise NotImplementedError

    def cell_table(self, data: PairData):
        raise NotImplementedError

    def cell_batch(self, table, rows: np.ndarray):
        raise NotImplementedError

    # --- training
    def fit(self, train: PairData, val: PairData) -> None:
        if len(train) == 0:
            raise InputError("drug response: the training split has no pairs")
        torch.manual_seed(self.seed)
        self.net = TGDRP(self.prepare(train), train.drugs.tgsa_graphs[0].x.shape[1]).to(self.device)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.options["lr"], weight_decay=0.0)
        cells, (cell_rows, drug_rows) = self.cell_table(train), pair_rows(train)
        y = torch.as_tensor(train.values, dtype=torch.float32, device=self.device)
        shuffle = np.random.default_rng(self.seed)
        val_cells = self.cell_table(val) if len(val) else None
        best_rmse, best_state, self.best_epoch = float("inf"), None, 0
        for epoch in range(1, self.options["epochs"] + 1):
            self.stopped_epoch = epoch
            self.net.train()
            for batch in np.array_split(shuffle.permutation(len(y)), max(1, -(-len(y) // self.options["batch_size"]))):
                optimizer.zero_grad(set_to_none=True)
                predicted = self.net(self.cell_batch(cells, cell_rows[batch]), self._drugs(train, drug_rows[batch]))
                nn.functional.mse_loss(predicted, y[batch]).backward()
                optimizer.step()
            if val_cells is None:
                continue
            rmse = float(np.sqrt(np.mean((self._predict(val, val_cells) - val.values) ** 2)))
            if rmse < best_rmse:  # strictly lower, as OpenBioMed's EarlyStopping
                best_rmse, self.best_epoch = rmse, epoch
                best_state = copy.deepcopy(self.net.state_dict()) if self.options["restore_best"] else None
            elif epoch - self.best_epoch >= self.options["patience"]:
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)

    def _drugs(self, data: PairData, rows: np.ndarray) -> Batch:
        """One graph per pair, as the authors batch them (a drug's batch-norm statistics count each pair)."""
        from torch_geometric.data import Batch

        return Batch.from_data_list([data.drugs.tgsa_graphs[int(i)] for i in rows]).to(self.device)

    # --- prediction
    def predict(self, data: PairData) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("predict() called before fit()")
        if len(data) == 0:
            return np.zeros(0, dtype=np.float64)
        return self._predict(data, self.cell_table(data))

    @torch.no_grad()
    def _predict(self, data: PairData, cells) -> np.ndarray:
        self.net.eval()
        cell_rows, drug_rows = pair_rows(data)
        out = []
        for start in range(0, len(data), self.options["batch_size"]):
            rows = slice(start, start + self.options["batch_size"])
            out.append(self.net(self.cell_batch(cells, cell_rows[rows]), self._drugs(data, drug_rows[rows])).double().cpu().numpy())
        return np.concatenate(out)


# ----------------------------------------------------------------- cell-line omics (TGDRP)
def omics_genes(data: PairData) -> list[str]:
    """The genes with all three profiles: the columns of .obsm mutation and copy_number that are also expression genes."""
    cell_lines = data.cell_lines
    missing = [key for key in OMICS[1:] if key not in cell_lines.obsm]
    if missing:
        raise InputError(
            f"the cell lines have no {' or '.join(missing)} profiles (.obsm['{missing[0]}']): TGDRP needs "
            "expression, mutation and copy number"
        )
    mutation, copy_number = (pd.DataFrame(cell_lines.obsm[key]) for key in OMICS[1:])
    genes = [g for g in mutation.columns if g in set(copy_number.columns) and g in set(cell_lines.var_names)]
    if not genes:
        raise InputError("no gene has expression, mutation and copy-number profiles in the cell lines")
    return [str(g) for g in genes]


def omics_array(data: PairData, genes: list[str]) -> np.ndarray:
    """(cell lines, genes, 3) float32: log expression, mutation, copy number (NaN where a profile is missing)."""
    columns = data.cell_lines.var_names.get_indexer(genes)
    expression = data.log_normalized[:, columns]
    mutation, copy_number = (pd.DataFrame(data.cell_lines.obsm[key]).reindex(columns=genes).to_numpy(np.float32) for key in OMICS[1:])
    return np.stack([expression, mutation, copy_number], axis=2).astype(np.float32)


def gene_graph(path, genes: list[str], min_score: float) -> np.ndarray:
    """(2, edges) both directions of every network pair among `genes` scored above `min_score`."""
    from celllm.ppi.pipeline import read_edges

    edges = read_edges(path)
    index = pd.Index(genes)
    a, b = index.get_indexer(edges["gene_a"].astype(str)), index.get_indexer(edges["gene_b"].astype(str))
    keep = (a >= 0) & (b >= 0) & (a != b) & (edges["score"].to_numpy() > min_score)
    pairs = np.concatenate([np.stack([a[keep], b[keep]]), np.stack([b[keep], a[keep]])], axis=1)
    return np.unique(pairs, axis=1) if pairs.size else np.zeros((2, 0), dtype=np.int64)


class GeneScaler:
    """Expression and copy number z-scored per gene with the training lines' statistics, missing values
    at the training mean (0); mutation as it is, a missing profile counted as no mutation."""

    def __init__(self, train: np.ndarray):
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a gene missing in every training line: mean 0, scale 1
            self.mean = np.nan_to_num(np.nanmean(train, axis=0))
            std = np.nan_to_num(np.nanstd(train, axis=0))
        self.std = np.where(std > 0, std, 1.0)
        self.mean[:, 1], self.std[:, 1] = 0.0, 1.0  # mutation: not scaled

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return np.nan_to_num((features - self.mean) / self.std, nan=0.0).astype(np.float32)


# ----------------------------------------------------------------- CellLM as the cell encoder
class CellLMCellEncoder(nn.Module):
    """The released recipe's cell branch over cached frozen-layer states: the encoder's last layer and
    final norm (trainable), a per-token Linear(dim, 1), scattered by gene into n_genes + 1 places."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        for parameter in encoder.parameters():
            parameter.requires_grad_(False)
        for parameter in [*encoder.layers[-1].parameters(), *encoder.norm.parameters()]:
            parameter.requires_grad_(True)
        self.pooler = nn.Linear(encoder.cfg.dim, 1)
        self.embed = _embedding_mlp(encoder.n_genes + 1, 1024, HIDDEN)

    def forward(self, cells: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """cells: (states after the frozen layers (U, W, dim), layer mask (U, W), gene ids (U, W), [CLS] = n_genes) of
        the batch's U distinct lines, and the line of each pair (B,). A line repeated in a batch is computed once:
        the same numbers (its copies would add no key to the batch-wide stabiliser), a fraction of the cost."""
        states, mask, gene_ids, line_of_pair = cells
        h = self.encoder.norm(self.encoder.run_layers(states, mask, len(self.encoder.layers) - 1)) * mask[..., None]
        scores = self.pooler(h).squeeze(-1)
        # padded places go to a spare slot past the last gene, dropped after the scatter
        slots = torch.where(mask, gene_ids, pad_gene_id(self.encoder.n_genes))
        scattered = scores.new_zeros(len(scores), gene_table_rows(self.encoder.n_genes)).scatter(1, slots, scores)
        return self.embed(scattered[:, : self.encoder.n_genes + 1])[line_of_pair]


class FrozenStates:
    """Every cell line's states after the encoder's frozen layers (all but the last), computed once and kept
    with its gene ids: the frozen layers see no gradient and, without dropout (the released config has
    none), give the same states every epoch. Host memory: tokens x dim x 4 bytes (GDSC's ~970 lines of
    at most 6,000 tokens at dim 512: at most 12 GB). In batches of `batch_size` in the data's order."""

    def __init__(self, encoder, cells, tokens_cfg, batch_size: int, device):
        self.states, self.gene_ids = [], []
        encoder.eval()
        with torch.no_grad():
            for start in range(0, len(cells), batch_size):
                part = cells.select(np.arange(start, min(start + batch_size, len(cells))))
                batch = {k: v.to(device) for k, v in pad_ragged(part.indptr, part.gene_ids, part.bins, encoder.n_genes, tokens_cfg).items()}
                x, mask = encoder.layer_inputs(batch["gene_ids"], batch["bins"], batch["mask"])
                x = encoder.run_layers(x, mask, 0, len(encoder.layers) - 1)
                x = nn.functional.pad(x, (0, 0, 0, 1))  # the masked mode appends no position: make room for the one kept below
                for i, length in enumerate(batch["mask"].sum(1).tolist()):
                    self.states.append(x[i, : length + 1].cpu())  # tokens, and the position standing for the padding
                    self.gene_ids.append(batch["gene_ids"][i, :length].cpu())

    def batch(self, rows, n_genes: int, device) -> tuple[torch.Tensor, ...]:
        """(states, layer mask, gene ids) of the distinct cells of `rows`, padded to one width, and each row's place among them."""
        rows, line_of_pair = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
        lengths = [len(self.gene_ids[r]) for r in rows]
        width = max(lengths) + 1
        states = torch.zeros(len(rows), width, self.states[0].shape[1])
        gene_ids = torch.full((len(rows), width), pad_gene_id(n_genes), dtype=torch.long)
        for i, r in enumerate(rows):
            states[i, : lengths[i] + 1] = self.states[r]
            gene_ids[i, : lengths[i]] = self.gene_ids[r]
        mask = torch.arange(width)[None, :] < torch.as_tensor(lengths)[:, None]
        return states.to(device), mask.to(device), gene_ids.to(device), torch.as_tensor(line_of_pair, device=device)


class CellLMRecipe(TGDRPRecipe):
    """The CellLM authors' drug-response recipe: TGDRP with CellLM (context.checkpoint) as the cell encoder."""

    OPTIONS = {**OPTIONS, "batch_size": 32}  # celllm.sh

    def prepare(self, train):
        from celllm.checkpoint import load_checkpoint

        # the whole pretraining model, not celllm.checkpoint.load_encoder: building it draws from torch's
        # generator after `fit` seeds it, and the draws left set this recipe's own initialisation
        model, self.vocab, self.cfg = load_checkpoint(self.context.checkpoint)
        self.encoder = model.encoder.to(self.device)
        return CellLMCellEncoder(self.encoder)

    def cell_table(self, data):
        from celllm.released import RELEASED_BATCH
        from celllm.tokens import tokenize

        cells = tokenize(data.cell_lines.X, data.cell_lines.var_names, self.vocab, self.cfg.tokens)
        return FrozenStates(self.encoder, cells, self.cfg.tokens, RELEASED_BATCH, self.device)

    def cell_batch(self, table, rows):
        return table.batch(rows, self.encoder.n_genes, self.device)
