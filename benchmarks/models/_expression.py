"""Shared shape of the baselines that fit a scikit-learn estimator on log-normalised expression.

(A leading underscore keeps this module out of the registry: it is not a model.)
"""

from __future__ import annotations


class ExpressionClassifier:
    """fit/predict on `CellData.log_normalized`; subclasses only say which estimator."""

    def __init__(self, seed, context):
        self.model = self.make_estimator(seed, context)

    def make_estimator(self, seed, context):
        raise NotImplementedError

    def fit(self, train, val):
        self.model.fit(train.log_normalized, train.labels)
        self.classes_ = self.model.classes_

    def predict(self, data):
        return self.model.predict(data.log_normalized)

    def predict_proba(self, data):
        return self.model.predict_proba(data.log_normalized)
