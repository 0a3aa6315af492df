"""Baseline: a random forest on log-normalised expression."""

from sklearn.ensemble import RandomForestClassifier

from benchmarks.models._expression import ExpressionClassifier
from benchmarks.registry import register


@register(
    "random_forest",
    kind="baseline",
    colour="#fd8d3c",
    tasks=("annotation", "drug_sensitivity"),
    summary="random forest (300 trees) on log-normalised expression",
)
class RandomForest(ExpressionClassifier):
    def make_estimator(self, seed, context):
        return RandomForestClassifier(n_estimators=300, class_weight="balanced", random_state=seed, n_jobs=context.threads)
