"""Baseline: ridge regression on expression and drug fingerprints.

Features of a pair: the cell line's standardised log expression (the 1000
most variable training genes) next to the drug's 1024-bit ECFP4. A linear model
adds a cell-line effect to a drug effect with no interaction, which is the
floor a deep model has to clear. The penalty is chosen on the validation pairs,
never on test.
"""

import numpy as np
from sklearn.linear_model import Ridge

from benchmarks.models._drug_response import Standardizer, expression_of, pair_rows, top_variable_genes
from benchmarks.registry import register

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
DEFAULT_ALPHA = 100.0  # used when there are no validation pairs to choose on


@register(
    "ridge_ecfp",
    kind="baseline",
    colour="#f16913",
    tasks=("drug_response",),
    summary="ridge regression on standardised log expression (1000 most variable genes) + ECFP4 bits, alpha picked on validation",
)
class RidgeECFP:
    def __init__(self, seed, context):
        self.model = None

    def fit(self, train, val):
        self.genes = top_variable_genes(train)
        self.scale = Standardizer(expression_of(train, self.genes))
        x_train, x_val = self._features(train), self._features(val) if len(val) else None
        alpha = DEFAULT_ALPHA
        if x_val is not None:
            errors = [np.mean((Ridge(alpha=a).fit(x_train, train.values).predict(x_val) - val.values) ** 2) for a in ALPHAS]
            alpha = ALPHAS[int(np.argmin(errors))]
        self.alpha = alpha
        self.model = Ridge(alpha=alpha).fit(x_train, train.values)

    def predict(self, data):
        if len(data) == 0:
            return np.zeros(0)
        return self.model.predict(self._features(data)).astype(np.float64)

    def _features(self, data):
        cell_rows, drug_rows = pair_rows(data)
        cells = self.scale(expression_of(data, self.genes))
        return np.hstack([cells[cell_rows], data.drugs.fingerprints[drug_rows]])
