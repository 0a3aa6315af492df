"""Task metrics: how each is computed, and what it is (`METRICS`: label, direction, range, chance)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)


@dataclass(frozen=True)
class Metric:
    label: str  # as figures name it
    lower_is_better: bool = False
    bounds: tuple[float, float] | None = None  # the range of its values, where it has one
    chance: float | None = None  # the value of a guess, drawn as a reference line


METRICS = {
    "accuracy": Metric("accuracy", bounds=(0.0, 1.0)),
    "macro_f1": Metric("macro F1", bounds=(0.0, 1.0)),
    "weighted_f1": Metric("weighted F1", bounds=(0.0, 1.0)),
    "f1": Metric("F1 (sensitive class)", bounds=(0.0, 1.0)),
    "auroc": Metric("AUROC", bounds=(0.0, 1.0), chance=0.5),
    "aupr": Metric("AUPR", bounds=(0.0, 1.0)),
    "pearson": Metric("Pearson r", bounds=(-1.0, 1.0)),
    "per_drug_pearson": Metric("per-drug Pearson r", bounds=(-1.0, 1.0)),
    "spearman": Metric("Spearman ρ", bounds=(-1.0, 1.0)),
    "rmse": Metric("RMSE (ln IC50)", lower_is_better=True),
    "mae": Metric("MAE (ln IC50)", lower_is_better=True),
    "r2": Metric("R²"),
    # zero-shot embedding quality (benchmarks.embedding_metrics)
    "ari": Metric("ARI (Leiden)", bounds=(0.0, 1.0)),  # can dip just below 0: drawn from 0
    "nmi": Metric("NMI (Leiden)", bounds=(0.0, 1.0)),
    "asw_label": Metric("cell-type ASW", bounds=(0.0, 1.0)),
    "knn_accuracy": Metric("kNN accuracy", bounds=(0.0, 1.0)),
    "knn_macro_f1": Metric("kNN macro F1", bounds=(0.0, 1.0)),
    "asw_batch": Metric("batch ASW", bounds=(0.0, 1.0)),
    "ilisi": Metric("iLISI", bounds=(0.0, 1.0)),
    "bio": Metric("bio conservation", bounds=(0.0, 1.0)),
    "batch": Metric("batch correction", bounds=(0.0, 1.0)),
    "overall": Metric("overall (scib)", bounds=(0.0, 1.0)),
    # an embedding's geometry and what it encodes (benchmarks.embedding_geometry)
    "mean_cosine": Metric("mean cosine of random pairs", lower_is_better=True, bounds=(-1.0, 1.0)),
    "alignment": Metric("alignment (same-type pairs)", lower_is_better=True, bounds=(0.0, 4.0)),
    "uniformity": Metric("uniformity", lower_is_better=True),
    "participation_ratio": Metric("participation ratio (dims used)"),
    "components_90": Metric("components for 90% variance"),
    "knn_f1_tissue": Metric("kNN F1: tissue", bounds=(0.0, 1.0)),
    "knn_f1_donor": Metric("kNN F1: donor (batch kept)", bounds=(0.0, 1.0)),
    "knn_f1_sample": Metric("kNN F1: sample (batch kept)", bounds=(0.0, 1.0)),
    "depth_r_genes": Metric("abs. r with log genes detected", lower_is_better=True, bounds=(0.0, 1.0)),
    "depth_r_counts": Metric("abs. r with log total counts", lower_is_better=True, bounds=(0.0, 1.0)),
}


def metric(name: str) -> Metric:
    """What metric `name` is; a metric no task declares here is labelled by its name."""
    return METRICS.get(name, Metric(name))


def classification_metrics(y_true, y_pred) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
    }


def confusion(y_true, y_pred) -> tuple[list[str], list[list[int]]]:
    labels = sorted(set(map(str, y_true)) | set(map(str, y_pred)))
    return labels, confusion_matrix(np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str), labels=labels).tolist()


def regression_metrics(y_true, y_pred, drugs) -> dict[str, float | None]:
    """Drug-response metrics over (cell line, drug) pairs.

    `per_drug_pearson` averages the within-drug Pearson correlation over drugs
    with at least 3 pairs whose truths and predictions both vary: the pooled
    correlation is dominated by differences between drugs, this one says whether
    a model ranks cell lines. A correlation that is undefined is None (records are JSON).
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    drugs = np.asarray(drugs).astype(str)
    if not (len(y_true) == len(y_pred) == len(drugs)):
        raise ValueError(f"regression_metrics: lengths differ ({len(y_true)} truths, {len(y_pred)} predictions, {len(drugs)} drugs)")
    if len(y_true) == 0:
        raise ValueError("regression_metrics: no pairs to score")
    per_drug = [
        _correlation("pearsonr", group["true"].to_numpy(), group["pred"].to_numpy())
        for _, group in pd.DataFrame({"drug": drugs, "true": y_true, "pred": y_pred}).groupby("drug", sort=True)
        if len(group) >= 3
    ]
    per_drug = [value for value in per_drug if value is not None]
    return {
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) >= 2 else None,
        "pearson": _correlation("pearsonr", y_true, y_pred),
        "spearman": _correlation("spearmanr", y_true, y_pred),
        "per_drug_pearson": float(np.mean(per_drug)) if per_drug else None,
        "n_drugs_per_drug_pearson": len(per_drug),
    }


def pearson(a, b) -> float | None:
    """Pearson r, or None where it is undefined (fewer than 2 values, or a constant side)."""
    return _correlation("pearsonr", np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def _correlation(name: str, a: np.ndarray, b: np.ndarray) -> float | None:
    """scipy.stats' `name`(a, b).statistic, or None where it is undefined (fewer than 2 values, or a constant side).
    scipy.stats is imported here, not with the module: the workflow imports this module whenever it parses (1 s)."""
    from scipy import stats

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    value = float(getattr(stats, name)(a, b).statistic)
    return value if np.isfinite(value) else None


def binary_metrics(y_true, y_pred, score, positive: str) -> dict[str, float | None]:
    """F1 of the positive class (the paper's drug-sensitivity metric), AUROC and AUPR of `score`.

    AUROC and AUPR are None when the test split holds a single class.
    """
    truth = np.asarray(y_true).astype(str) == positive
    called = np.asarray(y_pred).astype(str) == positive
    both = truth.any() and not truth.all()
    return {
        "f1": float(f1_score(truth, called, zero_division=0)),
        "auroc": float(roc_auc_score(truth, score)) if both else None,
        "aupr": float(average_precision_score(truth, score)) if both else None,
    }
