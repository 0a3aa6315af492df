"""Baseline: a two-layer perceptron on log-normalised expression.

Training stops when macro F1 on the protocol's validation split has not
improved for `patience` epochs, and the best epoch's weights are kept; the
test split never steers training. (scikit-learn's own early stopping would
carve its validation set out of the training cells, which breaks on few-shot
splits with a handful of cells per class.)
"""

import copy

import numpy as np
from sklearn.metrics import f1_score
from sklearn.neural_network import MLPClassifier

from benchmarks.models._expression import ExpressionClassifier
from benchmarks.registry import register

MAX_EPOCHS, PATIENCE = 200, 10


@register(
    "mlp",
    kind="baseline",
    colour="#e6550d",
    tasks=("annotation", "drug_sensitivity"),
    summary="MLP (256-128, ReLU, Adam) on log-normalised expression, epoch picked on validation",
)
class ExpressionMLP(ExpressionClassifier):
    def make_estimator(self, seed, context):
        return MLPClassifier(hidden_layer_sizes=(256, 128), alpha=1e-4, random_state=seed)

    def fit(self, train, val):
        classes = np.unique(train.labels)
        best, best_score, stale = None, -1.0, 0
        for _ in range(MAX_EPOCHS):
            self.model.partial_fit(train.log_normalized, train.labels, classes=classes)
            if not len(val):
                continue
            score = f1_score(val.labels, self.model.predict(val.log_normalized), average="macro")
            if score > best_score:
                best, best_score, stale = copy.deepcopy(self.model), score, 0
            elif (stale := stale + 1) >= PATIENCE:
                break
        self.model = best or self.model
        self.classes_ = self.model.classes_
