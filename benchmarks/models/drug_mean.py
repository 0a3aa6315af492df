"""Control: each drug's mean training ln IC50.

Most of the variance of ln IC50 lies between drugs: on DeepCDR's GDSC split a
per-drug mean already reaches Pearson ~0.84, so pooled correlations of a model
mean little unless they beat this. A drug without training pairs gets the
overall training mean.
"""

import numpy as np

from benchmarks.registry import register


@register("drug_mean", kind="control", colour="#525252", tasks=("drug_response",), summary="predicts the drug's mean training ln IC50")
class DrugMean:
    def __init__(self, seed, context):
        self.means, self.overall = None, None

    def fit(self, train, val):
        pairs = train.pairs.assign(drug=train.pairs["drug"].astype(str))
        self.means = pairs.groupby("drug")["ln_ic50"].mean()
        self.overall = float(pairs["ln_ic50"].mean())

    def predict(self, data):
        drugs = data.pairs["drug"].astype(str)
        return drugs.map(self.means).fillna(self.overall).to_numpy(dtype=np.float64)
