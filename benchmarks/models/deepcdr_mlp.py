"""Baseline: DeepCDR-style drug response, expression MLP + GIN drug encoder.

DeepCDR (Liu et al. 2020) pairs a graph network over the drug with an MLP over
the cell line's omics. Here the cell line is its log-normalised expression of
the 1000 genes that vary most across the training cell lines (chosen on train
only), and the drug goes through the same GIN as every other graph model, so a
CellLM model differs from this one only in how it represents the cell line.
"""

from benchmarks.models._drug_response import GraphDrugResponseModel, expression_of, top_variable_genes
from benchmarks.registry import register


@register(
    "deepcdr_mlp",
    kind="baseline",
    colour="#7f2704",
    tasks=("drug_response",),
    summary="GIN drug encoder + MLP on log expression of the 1000 most variable training genes (DeepCDR-style)",
    reference="Liu et al. 2020, Bioinformatics 36:i911, DeepCDR",
    options=GraphDrugResponseModel.OPTIONS,
)
class ExpressionGIN(GraphDrugResponseModel):
    def fit_cell_features(self, train):
        self.genes = top_variable_genes(train)

    def cell_features(self, data):
        return expression_of(data, self.genes)
