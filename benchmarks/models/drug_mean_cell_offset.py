"""Control: drug mean plus the cell line's mean residual.

An additive model with no drug-cell interaction: a line that is resistant to
most drugs is predicted resistant to all. A model that only learns "this line
is generally sensitive" matches this control; beating it takes interactions.
A cell line without training pairs gets offset 0 (the drug mean alone).
"""

import numpy as np

from benchmarks.models.drug_mean import DrugMean
from benchmarks.registry import register


@register(
    "drug_mean_cell_offset",
    kind="control",
    colour="#969696",
    tasks=("drug_response",),
    summary="predicts the drug's mean training ln IC50 plus the cell line's mean training residual",
)
class DrugMeanCellOffset(DrugMean):
    def fit(self, train, val):
        super().fit(train, val)
        residual = train.values - super().predict(train)
        self.offsets = (
            train.pairs.assign(residual=residual, cell_line=train.pairs["cell_line"].astype(str)).groupby("cell_line")["residual"].mean()
        )

    def predict(self, data):
        offsets = data.pairs["cell_line"].astype(str).map(self.offsets).fillna(0.0).to_numpy(dtype=np.float64)
        return super().predict(data) + offsets
