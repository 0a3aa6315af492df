"""Baseline: a two-layer perceptron on log-normalised expression.

Early stopping holds out a part of the training split (scikit-learn's own
validation fraction), so the test split never steers training.
"""

from sklearn.neural_network import MLPClassifier

from benchmarks.models._expression import ExpressionClassifier
from benchmarks.registry import register


@register("mlp", kind="baseline", tasks=("annotation",), summary="MLP (256-128, ReLU, Adam, early stopping) on log-normalised expression")
class ExpressionMLP(ExpressionClassifier):
    def make_estimator(self, seed, context):
        return MLPClassifier(hidden_layer_sizes=(256, 128), alpha=1e-4, early_stopping=True, validation_fraction=0.1, max_iter=300, random_state=seed)
