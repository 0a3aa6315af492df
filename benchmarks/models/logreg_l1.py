"""Baseline: L1 logistic regression on log-normalised expression (Boiarsky et al. 2023).

Their settings: C=0.1, liblinear (one-vs-rest); on Zheng68k it matched or beat
scBERT (accuracy 0.811, macro F1 0.707).
"""

from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from benchmarks.models._expression import ExpressionClassifier
from benchmarks.registry import register


@register(
    "logreg_l1",
    kind="baseline",
    colour="#a63603",
    tasks=("annotation", "drug_sensitivity"),
    summary="L1 logistic regression (C=0.1, liblinear) on log-normalised expression",
    reference="Boiarsky et al. 2023, bioRxiv 10.1101/2023.10.19.563100",
)
class L1LogisticRegression(ExpressionClassifier):
    def make_estimator(self, seed, context):
        classifier = LogisticRegression(C=0.1, l1_ratio=1.0, solver="liblinear", random_state=seed, max_iter=1000)
        return OneVsRestClassifier(classifier, n_jobs=context.threads)
