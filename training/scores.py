"""The figures a model card and `qism evaluate` report: accuracy, macro-F1, per-label figures, the
confusion matrix, calibration, and accuracy against coverage when unsure articles go to a person."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)

#: Shares of documents to keep labeled when picking a `--threshold`; the rest go to a person.
COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7, 0.5)


def score(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], proba: np.ndarray | None = None) -> dict:
    """The figures a model card and `qism evaluate` report, as plain JSON-ready data.

    `labels` orders the per-label rows and the confusion matrix; macro-F1 averages over the labels
    that have gold documents (`macro_f1_labels`), so a corpus with fewer sections than the model is
    scored on the sections it has.
    """
    labels = list(labels)
    gold = set(y_true)
    present = [label for label in labels if label in gold]
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    result = {
        "documents": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "macro_f1_labels": len(present),
        "per_label": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": {
            "labels": labels,
            "rows_true_columns_predicted": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }
    if proba is not None:
        y_index = label_indices(labels, y_true)
        result["expected_calibration_error"] = expected_calibration_error(proba, y_index)
        result["by_threshold"] = accuracy_by_coverage(proba, y_index)
    return result


def label_indices(labels: Sequence[str], y: Sequence[str]) -> np.ndarray:
    """The position of each label of `y` in `labels` (-1 for one not there)."""
    position = {label: i for i, label in enumerate(labels)}
    return np.asarray([position.get(label, -1) for label in y], dtype=np.int64)


def reliability(proba: np.ndarray, y_index: np.ndarray, bins: int = 15) -> list[dict]:
    """Mean confidence and accuracy in each non-empty equal-width confidence bin: the calibration curve."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_index
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return [
        {
            "confidence": float(confidence[which == b].mean()),
            "accuracy": float(correct[which == b].mean()),
            "documents": int((which == b).sum()),
        }
        for b in range(bins)
        if (which == b).any()
    ]


def expected_calibration_error(proba: np.ndarray, y_index: np.ndarray, bins: int = 15) -> float:
    """Gap between confidence and accuracy, averaged over equal-width confidence bins."""
    return float(
        sum(b["documents"] * abs(b["accuracy"] - b["confidence"]) for b in reliability(proba, y_index, bins))
        / len(y_index)
    )


def threshold_for_coverage(confidence: np.ndarray, coverage: float) -> float:
    """The largest threshold (to 3 decimals, rounded down) that keeps at least `coverage` of the documents."""
    kept = max(1, math.ceil(coverage * len(confidence)))
    return math.floor(float(np.sort(confidence)[::-1][kept - 1]) * 1000) / 1000


def accuracy_by_coverage(proba: np.ndarray, y_index: np.ndarray, coverages: Sequence[float] = COVERAGES) -> list[dict]:
    """For each target coverage: the threshold that reaches it, the coverage it gives, and the accuracy
    on the documents it keeps, so a user can trade coverage for accuracy with `--threshold`."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_index
    rows = []
    for target in coverages:
        threshold = threshold_for_coverage(confidence, target)
        kept = confidence >= threshold
        rows.append(
            {
                "target_coverage": target,
                "threshold": threshold,
                "coverage": float(kept.mean()),
                "accuracy": float(correct[kept].mean()),
            }
        )
    return rows


def scores_by_outlet(truth: np.ndarray, predicted: np.ndarray, outlets: np.ndarray) -> dict:
    """Accuracy, macro-F1 and F1 per label for each outlet: a model that learned an outlet's style
    instead of the topic scores well on one outlet and badly on another, and a label learned from
    two kinds of outlet can hold on one and fail on the other."""
    result = {}
    for outlet in sorted(set(outlets)):
        rows = outlets == outlet
        present = sorted(set(truth[rows]))
        per_label = f1_score(truth[rows], predicted[rows], labels=present, average=None, zero_division=0)
        result[outlet] = {
            "documents": int(rows.sum()),
            "accuracy": float(accuracy_score(truth[rows], predicted[rows])),
            "macro_f1": float(np.mean(per_label)),
            "f1": {str(label): float(f1) for label, f1 in zip(present, per_label)},
        }
    return result


def multi_label_score(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict:
    """The figures of a multi-label model from documents x labels 0/1 matrices of true and chosen
    labels: micro-, macro- (labels with gold documents) and samples-F1, Hamming loss, subset
    accuracy, per-label figures, how often each true section came with each chosen one
    (`rows_true_columns_predicted`: the diagonal is hits, the rest confusions or co-assignments),
    which sections are filed together (`co_occurrence`, true and predicted) and, for articles of
    several sections, the share whose sections were all found."""
    labels = list(labels)
    truth, predicted = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    present = np.flatnonzero(truth.any(axis=0))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, zero_division=0)
    several = truth.sum(axis=1) >= 2
    as_int = truth.astype(np.int64), predicted.astype(np.int64)
    return {
        "documents": len(truth),
        "multi_label": True,
        "micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)),
        "macro_f1": float(np.mean(f1[present])) if len(present) else 0.0,
        "macro_f1_labels": len(present),
        "samples_f1": float(f1_score(truth, predicted, average="samples", zero_division=0)),
        "hamming_loss": float(hamming_loss(truth, predicted)),
        "subset_accuracy": float(accuracy_score(truth, predicted)),
        "labels_per_document": {
            "true": float(truth.sum(axis=1).mean()),
            "predicted": float(predicted.sum(axis=1).mean()),
        },
        "several_labels": {
            "documents": int(several.sum()),
            "all_found": int((truth[several] <= predicted[several]).all(axis=1).sum()),
        },
        "per_label": {
            label: {
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(s),
                "predicted": int(n),
            }
            for label, p, r, f, s, n in zip(labels, precision, recall, f1, support, predicted.sum(axis=0))
        },
        "confusion_matrix": {"labels": labels, "rows_true_columns_predicted": (as_int[0].T @ as_int[1]).tolist()},
        "co_occurrence": {
            "labels": labels,
            "true": (as_int[0].T @ as_int[0]).tolist(),
            "predicted": (as_int[1].T @ as_int[1]).tolist(),
        },
    }
