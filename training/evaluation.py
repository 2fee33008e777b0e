"""Scores of a model on labeled documents: accuracy, macro-F1, per-label figures, confusion matrix,
calibration, and accuracy against coverage when unsure articles are left to a person."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .classifier import chosen_labels
from .config import ReadOptions
from .corpus import Document, label_key, read_source
from .errors import QismError
from .recipe import LabelMap
from .scores import label_indices, multi_label_score, score, scores_by_outlet


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
    #: For a multi-label model: documents x `labels` 0/1 matrices of the true and the chosen labels.
    truth: np.ndarray | None = None
    chosen: np.ndarray | None = None

    @property
    def is_multi_label(self) -> bool:
        return self.truth is not None


#: More documents than this share with gold labels the model does not know, and the evaluation is
#: refused: it would score the label names, not the model (a map not applied, the wrong corpus).
MAX_UNKNOWN_GOLD_SHARE = 0.5


def read_labeled(
    sources: Iterable[str], options: ReadOptions = ReadOptions(), label_maps: Sequence[LabelMap] = ()
) -> list[Document]:
    """The labeled documents of `sources`, read once so several models can be scored on them
    (binary files and empty label folders have nothing to score). Each raw label that one of
    `label_maps` (the models' own, from their cards) lists becomes the label id it maps to, as in
    training."""
    documents = []
    for source in sources:
        for doc in read_source(source, options):
            if doc.label is None or doc.problem is not None:
                continue
            documents.append(_mapped(doc, str(source), label_maps))
    if not documents:
        raise QismError("no labeled documents to evaluate")
    return documents


def _mapped(doc: Document, source: str, label_maps: Sequence[LabelMap]) -> Document:
    """The document with each label that one of `label_maps` lists as the label id it maps to."""

    def target(label: str) -> str:
        return next((to for mapping in label_maps if (to := mapping.target(source, label))), label)

    if doc.labels:
        labels = tuple(dict.fromkeys(target(label) for label in doc.labels))
        return replace(doc, label=labels[0], labels=labels if len(labels) > 1 else ())
    return replace(doc, label=target(doc.label))


def model_label_map(model) -> LabelMap | None:
    """The label map a model was trained with, as its card keeps it."""
    return LabelMap.from_dict(model.card["label_map"], "the model's label map") if model.card.get("label_map") else None


def evaluate_documents(model, documents: Sequence[Document]) -> Evaluation:
    """Score `model` on labeled documents; labels the model does not know count as errors, and a
    corpus whose documents mostly have such labels is refused. Documents from several outlets are
    also scored per outlet (`by_outlet`)."""
    if model.is_multi_label:
        return evaluate_multi_label(model, documents)
    y_true = [gold_label(model, doc.label) for doc in documents]
    check_known(model, y_true)
    proba = model.predict_proba([doc.text for doc in documents])
    model_labels = model.labels
    y_pred = [model_labels[i] for i in proba.argmax(axis=1)]
    unknown = sorted(set(y_true) - set(model_labels))
    labels = model_labels + unknown
    padded = np.hstack([proba, np.zeros((len(proba), len(unknown)))]) if unknown else proba
    result = score(y_true, y_pred, labels, proba=padded)
    result["labels_unknown_to_model"] = unknown
    outlets = np.asarray([doc.outlet or "" for doc in documents], dtype=object)
    if len(set(outlets)) > 1:
        result["by_outlet"] = scores_by_outlet(
            np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object), outlets
        )
    return Evaluation(list(documents), labels, label_indices(labels, y_true), padded, result)


def gold_label(model, label: str) -> str:
    """A gold label as the model spells it: `Sports ` is the model's `sports`, and a display name
    (`رياضة`) is the label it names."""
    spelled = {label_key(name): known for known, name in model.label_names.items()}
    spelled.update({label_key(known): known for known in model.labels})
    return spelled.get(label_key(label), " ".join(label.split()))


def check_known(model, y_true: Sequence[str]) -> None:
    """Refuse gold labels that are mostly ones the model does not know (see MAX_UNKNOWN_GOLD_SHARE)."""
    known = set(model.labels)
    strangers = Counter(label for label in y_true if label not in known)
    if sum(strangers.values()) > MAX_UNKNOWN_GOLD_SHARE * len(y_true):
        named = ", ".join(f"{label} ({count:,})" for label, count in strangers.most_common(5))
        raise QismError(
            f"{sum(strangers.values()):,} of {len(y_true):,} documents have labels the model does not know "
            f"({named}); its labels are {', '.join(model.labels)}. Is this the corpus and model you meant?"
        )


def evaluate_multi_label(model, documents: Sequence[Document]) -> Evaluation:
    """Score a multi-label model (see `scores.multi_label_score`): every gold label of a document
    (its list, else its label) against the labels the model chooses at its thresholds."""
    gold = [tuple(dict.fromkeys(gold_label(model, label) for label in doc.labels or (doc.label,))) for doc in documents]
    check_known(model, [labels[0] for labels in gold])
    proba = model.predict_proba([doc.text for doc in documents])
    unknown = sorted({label for labels in gold for label in labels} - set(model.labels))
    labels = model.labels + unknown
    column = {label: k for k, label in enumerate(labels)}
    truth = np.zeros((len(gold), len(labels)), dtype=bool)
    for i, doc_labels in enumerate(gold):
        truth[i, [column[label] for label in doc_labels]] = True
    padded = np.hstack([proba, np.zeros((len(proba), len(unknown)))]) if unknown else proba
    predicted = np.hstack([chosen_labels(proba, model.label_thresholds()), np.zeros((len(proba), len(unknown)), bool)])
    result = multi_label_score(truth, predicted, labels)
    result["labels_unknown_to_model"] = unknown
    y_index = label_indices(labels, [g[0] for g in gold])
    return Evaluation(list(documents), labels, y_index, padded, result, truth, predicted)


def evaluate(model, sources: Iterable[str], options: ReadOptions = ReadOptions()) -> dict:
    """Score `model` on labeled sources; labels the model does not know count as errors."""
    return evaluate_documents(model, read_labeled(sources, options, [m for m in [model_label_map(model)] if m])).scores


def evaluate_models(
    model,
    sources: Iterable[str],
    options: ReadOptions = ReadOptions(),
    against=None,
    names: Sequence[str] = ("model", "against"),
) -> tuple[Evaluation, dict | None]:
    """`qism evaluate`: score `model` on labeled sources and, with `against` (a second model), both
    side by side on the same documents (see `compare`). Each model's own label map applies."""
    label_maps = [m for m in (model_label_map(model), against and model_label_map(against)) if m]
    documents = read_labeled(sources, options, label_maps)
    result = evaluate_documents(model, documents)
    if against is None:
        return result, None
    return result, compare(result.scores, evaluate_documents(against, documents).scores, names)


def accuracy_at_coverage(scores: dict, coverage: float) -> float | None:
    """Accuracy on the `coverage` share of documents the model is surest of (None if not measured)."""
    rows = [row for row in scores.get("by_threshold", []) if row["target_coverage"] == coverage]
    return rows[0]["accuracy"] if rows else None


#: The figures `compare` puts side by side, where the scores have them (a multi-label model's have
#: micro-F1, subset accuracy and Hamming loss instead of accuracy and calibration).
COMPARED = ("accuracy", "micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "expected_calibration_error")


def compare(first: dict, second: dict, names: Sequence[str]) -> dict:
    """Two models' scores on the same documents side by side; `difference` is second minus first."""

    def row(a: float | None, b: float | None) -> dict:
        return {"values": [a, b], "difference": None if a is None or b is None else b - a}

    metrics = {key: row(first.get(key), second.get(key)) for key in COMPARED if key in first or key in second}
    if "by_threshold" in first or "by_threshold" in second:
        metrics["accuracy_at_coverage_90"] = row(accuracy_at_coverage(first, 0.9), accuracy_at_coverage(second, 0.9))
    labels = list(dict.fromkeys([*first["per_label"], *second["per_label"]]))
    per_label_f1 = {
        label: row(first["per_label"].get(label, {}).get("f1"), second["per_label"].get(label, {}).get("f1"))
        for label in labels
    }
    return {"models": list(names), "documents": first["documents"], "metrics": metrics, "per_label_f1": per_label_f1}
