"""A newsroom's own model from a base model and a few dozen of its labeled articles, no corpora needed.

The new model reads text as the base does (the same cleaning, hashing, kept buckets and IDF) and
fits the user's sections by a softmax whose weights are pulled toward the base's (see
`classifier.fit_toward_base`): a section the user names as the base does (its id or its display
name) starts from what the base knows of it, any other from nothing, and how far the user's
articles move them is chosen by cross-validation on those articles. Unlabeled articles of the same
outlet may add confident self-training, kept only where it helps on the labeled ones.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from .card import new_card
from .classifier import LinearClassifier, Prior
from .config import ReadOptions, resolve_jobs
from .corpus import label_key, read_source
from .errors import QismError
from .model import Model, check_model_folder, load_model
from .trainer import documents_by_outlet, prepare

#: Most unlabeled articles read for self-training (the first ones): time and memory stay bounded.
MAX_UNLABELED = 20_000
#: Columns that mark a file `qism predict` wrote: its `label` holds the model's guesses, not a person's.
PREDICTION_COLUMNS = {"score", "label_ar", "label_2", "score_2"}


def base_labels(base: Model) -> dict[str, str]:
    """Every spelling that names a base section (its id, its display name; case and spacing aside)
    mapped onto the section's id."""
    spelled = {label_key(name): label for label, name in base.label_names.items()}
    spelled.update({label_key(label): label for label in base.labels})
    return spelled


def check_not_predictions(source: str, options: ReadOptions) -> None:
    """Refuse a table whose `label` column is a model's guesses (a file `qism predict` wrote)."""
    path = Path(source)
    if not path.is_file() or not path.name.lower().endswith((".csv", ".tsv")) or options.label_column:
        return
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        header = {name.strip() for name in handle.readline(1 << 16).replace("\t", ",").split(",")}
    if "label" in header and header & PREDICTION_COLUMNS:
        raise QismError(
            f"{source}: written by `qism predict` (it has columns label and {sorted(header & PREDICTION_COLUMNS)[0]}): "
            "its labels are the model's guesses, and a model never trains on its own guesses; put the right "
            "sections in a column of their own and name it with --label-column"
        )


def read_unlabeled(path: str, options: ReadOptions, seen: set[str]) -> list[str]:
    """The first `MAX_UNLABELED` texts of `path` not among the labeled ones (labels, if any, ignored)."""
    unlabeled = ReadOptions(text_column=options.text_column, encoding=options.encoding, errors=options.errors)
    texts = []
    for doc in read_source(path, ReadOptions(**{**unlabeled.__dict__, "require_labels": False})):
        text = doc.text.strip() if doc.text and doc.problem is None else ""
        if text and text not in seen:
            seen.add(text)
            texts.append(doc.text)
            if len(texts) >= MAX_UNLABELED:
                break
    return texts


def section_names(base: Model, classes: list[str]) -> dict[str, str]:
    """Display names: the base's for its sections, a new section's own label for itself."""
    names = {label: base.label_names.get(label, label) for label in classes}
    taken = Counter(names.values())
    return {label: name if taken[name] == 1 else label for label, name in names.items()}


def train_from_base(
    sources,
    base: Model,
    *,
    read_options: ReadOptions = ReadOptions(),
    keep_base_labels: bool = False,
    unlabeled: str | None = None,
    seed: int = 42,
    n_jobs: int | None = None,
    name: str = "",
    report: Callable[[str], None] = lambda message: None,
) -> Model:
    """A model of the user's labeled `sources` that keeps what `base` knows (see the module).

    A label that names a base section (id or display name) becomes that section; any other is a new
    section. Base sections no article names are dropped unless `keep_base_labels`. `unlabeled` (a
    path) adds confident self-training where cross-validation says it helps."""
    started = time.perf_counter()
    sources = [str(source) for source in sources]
    if not sources:
        raise QismError("no training sources given")
    for source in sources:
        check_not_predictions(source, read_options)
    report(f"reading {', '.join(sources)}")
    prepared = prepare((path, doc) for path in sources for doc in read_source(path, read_options))
    if not prepared.texts:
        raise QismError("the sources have no labeled articles (all empty or without a label)")
    spelled = base_labels(base)
    labels = [spelled.get(label_key(label), label) for label in prepared.labels]
    classes = sorted(set(labels) | (set(base.labels) if keep_base_labels else set()))
    if len(classes) < 2:
        raise QismError(f"the articles have a single section ({classes[0]}); a classifier needs at least two")
    texts = None
    if unlabeled is not None:
        report(f"reading unlabeled articles from {unlabeled}")
        texts = read_unlabeled(unlabeled, read_options, {text.strip() for text in prepared.texts})
    report(f"fitting {len(classes)} sections on {len(labels):,} articles toward {base.card.get('name') or 'the base'}")
    pipeline, record = fit_toward(base, prepared.texts, labels, classes, texts, seed=seed, n_jobs=n_jobs)
    if unlabeled is not None and "self_training" not in record:
        record["self_training"] = {"unlabeled": 0, "used": False, "added": 0}
    return Model(
        pipeline, _card(base, prepared, labels, classes, record, name=name, seconds=time.perf_counter() - started)
    )


def fit_toward(
    base: Model, texts, labels, classes, unlabeled_texts=None, *, seed: int = 42, n_jobs: int | None = None
) -> tuple[Pipeline, dict]:
    """The pipeline of `classes` fitted on (texts, labels) toward `base`: the base's featurizer and
    a `LinearClassifier` fitted by `fit_toward` (see `classifier.fit_toward_base`), with the record
    of its choices."""
    features = copy.deepcopy(base.pipeline.named_steps["features"])
    features.set_params(n_jobs=resolve_jobs(n_jobs))
    X = features.transform(list(texts))
    X_unlabeled = features.transform(list(unlabeled_texts)) if unlabeled_texts else None
    classifier = LinearClassifier("logreg", calibration_size=0.0, random_state=seed, n_jobs=n_jobs)
    index = {label: k for k, label in enumerate(classes)}
    prior = Prior.from_base(base.pipeline.named_steps["classifier"], classes)
    record = classifier.fit_toward(X, np.asarray([index[label] for label in labels]), prior, X_unlabeled)
    return Pipeline([("features", features), ("classifier", classifier)]), record


def _card(base: Model, prepared, labels: list[str], classes: list[str], record: dict, *, name: str, seconds: float):
    """The card of a model fitted toward `base`: the base (name, checksum) and the choices made."""
    counts = Counter(labels)
    card = new_card(
        name=name,
        config={**base.card.get("config", {}), "classifier": "logreg"},
        labels={label: counts[label] for label in classes},
        split={"train": len(labels), "test": 0},
        sources=prepared.sources,
        scores=None,
        seconds=seconds,
        data={
            "dropped": prepared.dropped,
            "repaired": prepared.repaired,
            "flagged": prepared.flagged,
            "label_merges": prepared.label_merges,
            "documents_by_outlet": documents_by_outlet(prepared),
        },
    )
    card["label_names"] = section_names(base, classes)
    card["base"] = {
        "name": base.card.get("name", ""),
        "card_sha256": base.card.get("card_sha256", ""),
        "sections_inherited": [label for label in classes if label in base.labels],
        "sections_new": [label for label in classes if label not in base.labels],
        **record,
    }
    card["training"] = {"path": "toward a base model"}
    return card


def train_from_base_and_save(out, sources, base: str | Path, **options) -> Model:
    """`qism train --base`: load the base (`default`: the shipped model), train, save in `out`."""
    check_model_folder(out, sources)
    model = train_from_base(sources, load_model(base), name=Path(out).name, **options)
    options.get("report", lambda message: None)(f"saving to {out}")
    model.save(out)
    return model
