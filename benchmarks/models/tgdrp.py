"""Baseline: TGSA's TGDRP (Zhu et al. 2022) as OpenBioMed runs it (configs/drp/TGDRP.json, tgdrp.sh).

A cell line is a graph over its genes of TGSA's set (the columns of the cell lines' .obsm mutation
and copy_number, 706 Cancer Gene Census genes on real data) with expression, mutation and copy
number per gene, linked by the interaction network; a drug is a GIN over TGSA's atom features.
Paired with `celllm_tgdrp` / `celllm_released_tgdrp`, which keep everything but put CellLM in
the cell line's place, it shows what CellLM adds to the recipe it was published with.
Network, training and every difference from the authors' run: benchmarks/models/_tgdrp.py.
"""

import numpy as np
import torch

from benchmarks.models._tgdrp import OPTIONS, GeneGraphCellEncoder, GeneScaler, TGDRPRecipe, gene_graph, omics_array, omics_genes
from benchmarks.registry import register
from celllm.errors import InputError

DEFAULTS = {**OPTIONS, "min_score": 950, "cell_layers": 3}  # STRING > 0.95 (TGSA); layer_cell 3 (TGDRP.json)


@register(
    "tgdrp",
    kind="baseline",
    colour="#8c6d31",
    tasks=("drug_response",),
    summary="TGSA's TGDRP: GAT over a gene graph (expression, mutation, copy number) + GIN drug encoder",
    reference="Zhu et al. 2022, Bioinformatics 38:461, TGSA; OpenBioMed configs/drp/TGDRP.json",
    options=DEFAULTS,
    needs_network=True,
)
class TGDRPBaseline(TGDRPRecipe):
    OPTIONS = DEFAULTS

    def prepare(self, train):
        if self.context.network is None:
            raise InputError("tgdrp needs the gene interaction network (context.network)")
        self.genes = omics_genes(train)
        features = omics_array(train, self.genes)
        self.scale = GeneScaler(features)
        edges = gene_graph(self.context.network, self.genes, float(self.options["min_score"]))
        rng = np.random.default_rng(self.seed)
        return GeneGraphCellEncoder(edges, len(self.genes), 3, self.options["cell_layers"], rng)

    def cell_table(self, data):
        return torch.as_tensor(self.scale(omics_array(data, self.genes)), device=self.device)

    def cell_batch(self, table, rows):
        return table[torch.as_tensor(rows, dtype=torch.long, device=table.device)]
