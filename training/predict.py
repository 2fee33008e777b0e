"""Label documents with a model, as a stream of records (`output` writes them in the format asked for).

Documents are labeled in batches, so a file of any size runs in bounded memory: one batch of text,
its features and its scores at a time. Every input document yields exactly one record, in order.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .clean import has_arabic_word
from .config import LabelOptions, resolve_jobs
from .corpus import Document, label_key
from .errors import QismError
from .features.pool import CHUNK_SIZE
from .model import Model, chosen_with_scores, top_labels
from .recipe import LabelMap


def batch_size_for(n_jobs: int | None) -> int:
    """Enough documents per batch to keep every core busy, few enough to bound memory."""
    return CHUNK_SIZE * resolve_jobs(n_jobs) * 2


def label_documents(
    model: Model,
    documents: Iterable[Document],
    options: LabelOptions = LabelOptions(),
    batch_size: int = 1000,
    on_batch: Callable[[int], None] = lambda n: None,
) -> Iterator[dict]:
    """One record per document: `id` (when known), `label`, `label_ar` (when the model has display
    names), `top` (the best `options.top_k` labels), for a multi-label model `labels` (its chosen
    labels, best first, see `Model.predict_chosen`) and `labels_ar`, with `options.explain` `terms` (that many terms
    that pushed it most towards its best label), and last the document's kept input columns
    (`Document.fields`).

    `label` is `options.unknown_label` when the best probability is below `options.threshold`, so
    unsure articles can go to a person; `top` still lists the model's labels and a `reason` names the
    best. A document without usable text (empty, a binary file, no Arabic word) is not sent to the
    model: its record has the unknown label, an empty `top` and a `reason`.
    """
    options.check_against(model.labels)
    names = model.label_names
    documents = iter(documents)
    while batch := list(itertools.islice(documents, batch_size)):
        records = [
            _unlabeled(doc, reason, options, names, model.is_multi_label) if (reason := unusable(doc)) else None
            for doc in batch
        ]
        positions = [i for i, record in enumerate(records) if record is None]
        usable = [batch[i].text for i in positions]
        if usable:
            proba, terms = (
                model.explain(usable, options.explain) if options.explain else (model.predict_proba(usable), None)
            )
            chosen = chosen_labels_of(model, proba, options)
            for i, (position, top) in enumerate(zip(positions, top_labels(proba, model.labels, options.top_k))):
                record = {"id": batch[position].id} if batch[position].id is not None else {}
                record["label"] = top[0][0] if top[0][1] >= options.threshold or chosen else options.unknown_label
                if names:
                    record["label_ar"] = names.get(record["label"], record["label"])
                if chosen:
                    record.update(_labels_cells([label for label, _ in chosen[i]], names))
                record["top"] = [_scored(label, p, names) for label, p in top]
                if terms is not None:
                    record["terms"] = terms[i]
                if record["label"] == options.unknown_label:
                    record["reason"] = (
                        f"below the threshold {options.threshold:g}; the best label is {top[0][0]} ({top[0][1]:.2f})"
                    )
                record.update(batch[position].fields)
                records[position] = record
        yield from records
        on_batch(len(batch))


def chosen_labels_of(model: Model, proba, options: LabelOptions) -> list[list[tuple[str, float]]] | None:
    """A multi-label model's chosen labels of each row (a `--threshold` above 0 replaces every
    label's own threshold); None for a single-label model."""
    if not model.is_multi_label:
        return None
    return chosen_with_scores(proba, model.labels, model.label_thresholds(options.threshold or None))


def _labels_cells(labels: list[str], names: dict[str, str]) -> dict:
    """A multi-label record's `labels`, best first, and their display names in `labels_ar`."""
    cells = {"labels": labels}
    if names:
        cells["labels_ar"] = [names.get(label, label) for label in labels]
    return cells


def unusable(doc: Document) -> str | None:
    """Why a document cannot be labeled: it was a binary file, it has no text, or no Arabic word in
    it (English, numbers only), where a model of Arabic news would give a label at random."""
    if doc.problem:
        return doc.problem
    if not doc.text or doc.text.isspace():
        return "empty text"
    return None if has_arabic_word(doc.text) else "no Arabic words"


def _unlabeled(doc: Document, reason: str, options: LabelOptions, names: dict[str, str], multi_label: bool) -> dict:
    record = {"id": doc.id} if doc.id is not None else {}
    record["label"] = options.unknown_label
    if names:
        record["label_ar"] = names.get(options.unknown_label, options.unknown_label)
    if multi_label:
        record.update(_labels_cells([], names))
    record["top"] = []
    if options.explain:
        record["terms"] = []
    record["reason"] = reason
    record.update(doc.fields)
    return record


def _scored(label: str, probability: float, names: dict[str, str]) -> dict:
    item = {"label": label, "score": round(float(probability), 4)}
    if names:
        item["label_ar"] = names.get(label, label)
    return item


@dataclass
class RelabeledModel(Model):
    """A model seen through a newsroom's label map: its sections are the map's, each scoring the sum
    of the probabilities of the model's labels it takes (`from`: ids or display names), so one
    section may merge two of the model's; a model label the map does not list stays as it is."""

    merge: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    sections: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return list(self.sections)

    @property
    def label_names(self) -> dict[str, str]:
        return self.card.get("label_names", {})

    def predict_proba(self, texts) -> np.ndarray:
        return super().predict_proba(texts) @ self.merge

    def explain(self, texts, n: int):
        """Merged probabilities, and the terms behind the model's own best label."""
        proba, terms = super().explain(texts, n)
        return proba @ self.merge, terms


def relabeled(model: Model, label_map: LabelMap | str | os.PathLike) -> RelabeledModel:
    """`model` in the sections of `label_map` (a map, or its TOML/JSON file; see `RelabeledModel`); a
    section that takes a label the model does not have, or a model label taken by two sections, is
    refused."""
    label_map = label_map if isinstance(label_map, LabelMap) else LabelMap.load(label_map)
    spelled = {label_key(name): label for label, name in model.label_names.items()}
    spelled.update({label_key(label): label for label in model.labels})
    target_of: dict[str, str] = {}
    for (_, raw), section in label_map.targets.items():
        label = spelled.get(label_key(raw))
        if label is None:
            raise QismError(
                f"the label map's section {section!r} takes {raw!r}, which is not a label of the model "
                f"(its labels: {', '.join(model.labels)})"
            )
        if target_of.setdefault(label, section) != section:
            raise QismError(f"the label map puts the model's label {label!r} in two sections")
    sections = list(dict.fromkeys([*label_map.names, *(label for label in model.labels if label not in target_of)]))
    column = {section: j for j, section in enumerate(sections)}
    merge = np.zeros((len(model.labels), len(sections)))
    for i, label in enumerate(model.labels):
        merge[i, column[target_of.get(label, label)]] = 1.0
    names = {**model.label_names, **label_map.names}
    card = {key: value for key, value in model.card.items() if key != "label_map"}
    card["label_names"] = {section: names.get(section, section) for section in sections}
    card["relabeled_by"] = label_map.to_dict()
    return RelabeledModel(model.pipeline, card, merge, sections)
