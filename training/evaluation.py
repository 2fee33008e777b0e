"""Scores of a model on labeled documents: accuracy, macro-F1, per-label figures, confusion matrix,
calibration, and accuracy against coverage when unsure articles are left to a person."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from .corpus import Document, ReadOptions, label_key, read_sources
from .errors import QismError

#: Shares of documents to keep labeled when picking a `--threshold`; the rest go to a person.
COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7, 0.5)


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
        {"confidence": float(confidence[which == b].mean()), "accuracy": float(correct[which == b].mean()),
         "documents": int((which == b).sum())}
        for b in range(bins) if (which == b).any()
    ]


def expected_calibration_error(proba: np.ndarray, y_index: np.ndarray, bins: int = 15) -> float:
    """Gap between confidence and accuracy, averaged over equal-width confidence bins."""
    return float(sum(b["documents"] * abs(b["accuracy"] - b["confidence"]) for b in reliability(proba, y_index, bins))
                 / len(y_index))


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
        rows.append({"target_coverage": target, "threshold": threshold, "coverage": float(kept.mean()),
                     "accuracy": float(correct[kept].mean())})
    return rows


@dataclass
class Evaluation:
    """A model's predictions on labeled documents and their scores: what reports are drawn from."""

    documents: list[Document]
    #: The model's labels, then labels only the documents have (the model never predicts those).
    labels: list[str]
    #: Index into `labels` of each document's true label.
    y_index: np.ndarray
    #: Probabilities, one column per entry of `labels`.
    proba: np.ndarray
    scores: dict


def read_labeled(sources: Iterable[str], options: ReadOptions = ReadOptions()) -> list[Document]:
    """The labeled documents of `sources`, read once so several models can be scored on them
    (binary files and empty label folders have nothing to score)."""
    documents = [doc for doc in read_sources(sources, options) if doc.label is not None and doc.problem is None]
    if not documents:
        raise QismError("no labeled documents to evaluate")
    return documents


def evaluate_documents(model, documents: Sequence[Document]) -> Evaluation:
    """Score `model` on labeled documents; labels the model does not know count as errors."""
    # `Sports ` is the model's `sports`, and a display name (`رياضة`) is the label it names
    spelled = {label_key(name): label for label, name in model.label_names.items()}
    spelled.update({label_key(label): label for label in model.labels})
    y_true = [spelled.get(label_key(doc.label), " ".join(doc.label.split())) for doc in documents]
    proba = model.predict_proba([doc.text for doc in documents])
    model_labels = model.labels
    y_pred = [model_labels[i] for i in proba.argmax(axis=1)]
    unknown = sorted(set(y_true) - set(model_labels))
    labels = model_labels + unknown
    padded = np.hstack([proba, np.zeros((len(proba), len(unknown)))]) if unknown else proba
    result = score(y_true, y_pred, labels, proba=padded)
    result["labels_unknown_to_model"] = unknown
    return Evaluation(list(documents), labels, label_indices(labels, y_true), padded, result)


def evaluate(model, sources: Iterable[str], options: ReadOptions = ReadOptions()) -> dict:
    """Score `model` on labeled sources; labels the model does not know count as errors."""
    return evaluate_documents(model, read_labeled(sources, options)).scores


def accuracy_at_coverage(scores: dict, coverage: float) -> float | None:
    """Accuracy on the `coverage` share of documents the model is surest of (None if not measured)."""
    rows = [row for row in scores.get("by_threshold", []) if row["target_coverage"] == coverage]
    return rows[0]["accuracy"] if rows else None


def compare(first: dict, second: dict, names: Sequence[str]) -> dict:
    """Two models' scores on the same documents side by side; `difference` is second minus first."""

    def row(a: float | None, b: float | None) -> dict:
        return {"values": [a, b], "difference": None if a is None or b is None else b - a}

    metrics = {
        "accuracy": row(first["accuracy"], second["accuracy"]),
        "macro_f1": row(first["macro_f1"], second["macro_f1"]),
        "expected_calibration_error": row(first.get("expected_calibration_error"), second.get("expected_calibration_error")),
        "accuracy_at_coverage_90": row(accuracy_at_coverage(first, 0.9), accuracy_at_coverage(second, 0.9)),
    }
    labels = list(dict.fromkeys([*first["per_label"], *second["per_label"]]))
    per_label_f1 = {label: row(first["per_label"].get(label, {}).get("f1"), second["per_label"].get(label, {}).get("f1"))
                    for label in labels}
    return {"models": list(names), "documents": first["documents"], "metrics": metrics, "per_label_f1": per_label_f1}
