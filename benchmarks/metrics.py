"""Task metrics."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score


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
