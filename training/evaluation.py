"""Scores of a model on labeled documents: accuracy, macro-F1, per-label figures, confusion matrix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from .corpus import ReadOptions, read_sources
from .errors import QismError


def score(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], proba: np.ndarray | None = None) -> dict:
    """The figures a model card and `qism evaluate` report, as plain JSON-ready data.

    `labels` orders the per-label rows and the confusion matrix; macro-F1 averages over the labels
    that occur in `y_true` or `y_pred`, so a corpus with fewer sections than the model is fair.
    """
    labels = list(labels)
    present = [label for label in labels if label in set(y_true) | set(y_pred)]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    result = {
        "documents": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
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
        result["expected_calibration_error"] = expected_calibration_error(
            proba, np.asarray([labels.index(y) if y in labels else -1 for y in y_true])
        )
    return result


def expected_calibration_error(proba: np.ndarray, y_index: np.ndarray, bins: int = 15) -> float:
    """Gap between confidence and accuracy, averaged over equal-width confidence bins."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_index
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def evaluate(model, sources: Iterable[str], options: ReadOptions = ReadOptions()) -> dict:
    """Score `model` on labeled sources; labels the model does not know count as errors."""
    documents = [doc for doc in read_sources(sources, options) if doc.label is not None]
    if not documents:
        raise QismError("no labeled documents to evaluate")
    y_true = [doc.label.strip() for doc in documents]
    proba = model.predict_proba([doc.text for doc in documents])
    y_pred = [model.labels[i] for i in proba.argmax(axis=1)]
    unknown = sorted(set(y_true) - set(model.labels))
    labels = list(model.labels) + unknown
    padded = np.hstack([proba, np.zeros((len(proba), len(unknown)))]) if unknown else proba
    result = score(y_true, y_pred, labels, proba=padded)
    result["labels_unknown_to_model"] = unknown
    return result
