"""Fit a topic classifier on labeled documents: deduplicate, split, featurize, fit, score."""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from .autotune import check_budget, choose_config
from .classifier import CLASSIFIERS, LinearClassifier
from .clean import ARABIC_LETTER_RE, TextCleaner
from .corpus import EMPTY_LABEL_FOLDER, Document, ReadOptions, label_key, read_source
from .errors import QismError
from .evaluation import score
from .features import MAX_ARTICLE_CHARS, TfidfFeaturizer
from .model import Model, package_versions

@dataclass
class TrainConfig:
    """Everything that decides the model; stored whole in the model card."""

    classifier: str = "sgd"
    C: float = 1.0
    class_weight: str | None = "balanced"
    #: Smoothing of NB log-count-ratio feature scaling for LinearSVC and SGD (0: off).
    nb_scaling: float = 1.0
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = None
    min_df: int = 1
    max_df: float = 1.0
    max_features: int | None = None
    n_buckets: int = 2**20
    sublinear_tf: bool = True
    cleaning: dict[str, bool] = field(default_factory=dict)
    #: Edge segments found in this many training documents are dropped as boilerplate (0: keep them).
    boilerplate_min_docs: int = 5
    #: The word n-grams of an article's first this many words also count as lead terms (0: off).
    lead_words: int = 50
    #: Weigh documents so each source counts the same within a label (for corpora mixing outlets).
    balance_sources: bool = False
    #: A source's documents count against a label only if the source uses it (for corpora mixing
    #: outlets whose sections differ).
    source_label_sets: bool = False
    #: Source label sets for these labels only (a section some outlets lack), with or without
    #: `source_label_sets`.
    label_set_labels: tuple[str, ...] = ()
    #: The weight an outlet's documents keep in the problem of a label it lacks (0: left out).
    label_set_weight: float = 0.0
    calibration_size: float = 0.1
    #: Also fit a scale and bias per label when calibrating (they fit the training label mix).
    class_scaling: bool = False
    test_size: float = 0.2
    seed: int = 42
    dedupe: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise QismError(f"unknown classifier {self.classifier!r}; choose one of {', '.join(CLASSIFIERS)}")
        if self.lead_words < 0:
            raise QismError(f"--lead-words is a number of words, 0 or more; got {self.lead_words}")
        if self.nb_scaling < 0:
            raise QismError(f"NB scaling is a smoothing amount, 0 or more; got {self.nb_scaling}")
        if self.class_weight not in (None, "balanced"):
            raise QismError(f"class weight is 'balanced' or none; got {self.class_weight!r}")
        if not 0 <= self.label_set_weight <= 1:
            raise QismError(f"label_set_weight is a weight in [0, 1]; got {self.label_set_weight}")
        if not 0 <= self.test_size < 1:
            raise QismError(f"--test-size must be in [0, 1), got {self.test_size}")
        unknown = set(self.cleaning) - set(TextCleaner().get_params())
        if unknown:
            raise QismError(f"unknown cleaning step(s): {', '.join(sorted(unknown))}")

    def build_pipeline(self, n_jobs: int | None = None) -> Pipeline:
        return Pipeline([("features", self.build_features(n_jobs)), ("classifier", self.build_classifier(n_jobs))])

    def build_features(self, n_jobs: int | None = None) -> TfidfFeaturizer:
        return TfidfFeaturizer(
            cleaner=TextCleaner(**self.cleaning),
            word_ngrams=self.word_ngrams,
            char_ngrams=self.char_ngrams,
            sublinear_tf=self.sublinear_tf,
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            n_buckets=self.n_buckets,
            boilerplate_min_docs=self.boilerplate_min_docs,
            lead_words=self.lead_words,
            n_jobs=n_jobs,
        )

    def build_classifier(self, n_jobs: int | None = None) -> LinearClassifier:
        return LinearClassifier(self.classifier, C=self.C, class_weight=self.class_weight, nb_scaling=self.nb_scaling,
                                calibration_size=self.calibration_size, class_scaling=self.class_scaling,
                                source_label_sets=self.source_label_sets or bool(self.label_set_labels),
                                label_sets_only=tuple(self.label_set_labels), label_sets_weight=self.label_set_weight,
                                n_jobs=n_jobs, random_state=self.seed)


# --- corpus preparation -----------------------------------------------------------------------

@dataclass
class Prepared:
    """The documents a model is fitted on, and what happened to the others on the way, for the card."""

    texts: list[str]
    labels: list[str]
    sources: list[dict]
    dropped: dict[str, int]
    #: Counts of what was kept after a fix: label spellings merged, undecodable characters, cut texts.
    repaired: dict[str, int] = field(default_factory=dict)
    #: Counts of documents kept as they are but worth a look: no Arabic letters, an id seen before.
    flagged: dict[str, int] = field(default_factory=dict)
    #: Label spellings that differ only in case or spaces, each with the label it was merged onto.
    label_merges: dict[str, str] = field(default_factory=dict)
    #: Label folders that held no articles (so the model has no such label).
    empty_label_folders: list[str] = field(default_factory=list)
    #: Where each kept document came from: its outlet when the record names one, else its file.
    origins: list[str] = field(default_factory=list)

    def origin_array(self) -> np.ndarray:
        """`origins` as an array, one (unnamed) source when they were not recorded."""
        return np.asarray(self.origins or [""] * len(self.texts), dtype=object)


_WHITESPACE_RE = re.compile(r"\s+")


def _dedupe_key(text: str) -> bytes:
    """Texts equal but for spacing share a key; a digest, so a corpus is not held twice in memory."""
    return hashlib.blake2b(_WHITESPACE_RE.sub(" ", text).strip().encode(), digest_size=16).digest()


_DIGEST_PIECE = 1 << 20


def _add_to_digest(digest, doc: Document) -> None:
    """Add a document to its source's SHA-256 in pieces, so a huge article is not copied whole."""
    digest.update(f"{doc.label}\x1f".encode())
    for start in range(0, len(doc.text), _DIGEST_PIECE):
        digest.update(doc.text[start:start + _DIGEST_PIECE].encode())
    digest.update(b"\x1e")


def merge_label_spellings(labels: Iterable[str]) -> dict[str, str]:
    """Map each label spelling that differs from another only in case or spaces onto the most frequent
    of them (ties: the first in sorted order), so `Sports`, `sports` and `sports ` are one label."""
    counts = Counter(labels)
    groups: dict[str, Counter] = {}
    for spelling, count in counts.items():
        groups.setdefault(label_key(spelling), Counter())[spelling] += count
    merges = {}
    for spellings in groups.values():
        if len(spellings) > 1:
            tidy = Counter()
            for spelling, count in spellings.items():
                tidy[" ".join(spelling.split())] += count
            label = min(tidy, key=lambda candidate: (-tidy[candidate], candidate))
            merges.update({spelling: label for spelling in spellings if spelling != label})
    return merges


def prepare(documents: Iterable[tuple[str, Document]], dedupe: bool = True) -> Prepared:
    """Collect labeled documents per source and account for every one: drop binary files, empty and
    unlabeled ones, exact duplicates, and texts that appear under more than one label (they teach
    nothing and leak across a split); merge label spellings; count what is kept but worth a look."""
    texts: list[str] = []
    labels: list[str] = []
    origins: list[str] = []
    keys: list[bytes] = []
    per_source: dict[str, dict] = {}
    ids_seen: set[tuple[str, str]] = set()
    dropped, repaired, flagged = Counter(), Counter(), Counter()
    empty_folders = []
    for source_path, doc in documents:
        if doc.problem == EMPTY_LABEL_FOLDER:
            empty_folders.append(f"{source_path}/{doc.id}")
            continue
        entry = per_source.setdefault(source_path, {"path": source_path, "documents": 0, "sha256": hashlib.sha256()})
        entry["documents"] += 1
        _add_to_digest(entry["sha256"], doc)
        if doc.problem:
            dropped[doc.problem.replace(" ", "_")] += 1
            continue
        if not (doc.label or "").strip():
            dropped["no_label"] += 1
            continue
        if not doc.text or doc.text.isspace():
            dropped["empty_text"] += 1
            continue
        if doc.id is not None:
            flagged["duplicate_id"] += (source_path, doc.id) in ids_seen
            ids_seen.add((source_path, doc.id))
        flagged["not_arabic"] += not ARABIC_LETTER_RE.search(doc.text)
        repaired["replaced_characters"] += doc.text.count("\ufffd")
        repaired["truncated"] += len(doc.text) > MAX_ARTICLE_CHARS
        text = doc.text[:MAX_ARTICLE_CHARS]  # all the featurizer reads; a huge file is not kept whole
        texts.append(text)
        labels.append(doc.label)
        origins.append(doc.source or Path(source_path).name)
        if dedupe:
            keys.append(_dedupe_key(text))
    sources = [{**entry, "sha256": entry["sha256"].hexdigest()} for entry in per_source.values()]
    merges = merge_label_spellings(labels)
    repaired["relabeled"] = sum(label in merges for label in labels)
    labels = [merges.get(label, " ".join(label.split())) for label in labels]
    if dedupe:
        labels_of: dict[bytes, set[str]] = {}
        for key, label in zip(keys, labels):
            labels_of.setdefault(key, set()).add(label)
        seen: set[bytes] = set()
        kept = []
        for i, key in enumerate(keys):
            if len(labels_of[key]) > 1:
                dropped["label_conflicts"] += 1
            elif key in seen:
                dropped["duplicates"] += 1
            else:
                seen.add(key)
                kept.append(i)
        texts = [texts[i] for i in kept]
        labels = [labels[i] for i in kept]
        origins = [origins[i] for i in kept]
    return Prepared(texts, labels, sources, dict(dropped), _nonzero(repaired), _nonzero(flagged), merges,
                    empty_folders, origins)


def _nonzero(counts: Counter) -> dict[str, int]:
    return {key: count for key, count in counts.items() if count}


def split(prepared: Prepared, test_size: float, seed: int):
    """Stratified train/test indices (all rows train when test_size is 0)."""
    n = len(prepared.labels)
    if not test_size:
        return np.arange(n), np.arange(0)
    counts = Counter(prepared.labels)
    short = sorted(label for label, count in counts.items() if count < 2)
    if short:
        raise QismError(
            f"label(s) with a single document cannot be split for testing: {', '.join(short)}; "
            "add documents or train with --test-size 0"
        )
    n_test = max(int(round(test_size * n)), len(counts))
    if n - n_test < len(counts):
        raise QismError(f"{n} documents are too few to hold out {test_size:.0%} for testing; use --test-size 0")
    return train_test_split(np.arange(n), test_size=n_test, stratify=prepared.labels, random_state=seed)


def source_balancing_weights(labels: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """Sample weights under which every source has the same say within each label, so a label that
    one outlet dominates is learned from its topic, not from that outlet's style."""
    groups = Counter(zip(labels, origins))
    sources_per_label = Counter(label for label, _ in groups)
    label_sizes = Counter(labels)
    weights = [label_sizes[label] / (sources_per_label[label] * groups[label, origin]) for label, origin in zip(labels, origins)]
    return np.asarray(weights, dtype=np.float64)


def scores_by_source(truth: np.ndarray, predicted: np.ndarray, origins: np.ndarray) -> dict:
    """Held-out accuracy, macro-F1 and F1 per label for each source: a model that learned an outlet's
    style instead of the topic scores well on one source and badly on another, and a label learned
    from two kinds of source can hold on one and fail on the other."""
    result = {}
    for origin in sorted(set(origins)):
        rows = origins == origin
        present = sorted(set(truth[rows]))
        per_label = f1_score(truth[rows], predicted[rows], labels=present, average=None, zero_division=0)
        result[origin] = {
            "documents": int(rows.sum()),
            "accuracy": float(accuracy_score(truth[rows], predicted[rows])),
            "macro_f1": float(np.mean(per_label)),
            "f1": {label: float(f1) for label, f1 in zip(present, per_label)},
        }
    return result


def documents_by_outlet(prepared: Prepared) -> dict[str, dict[str, int]]:
    """Documents per outlet and label: which outlets a label was learned from, and how much of it."""
    counts = Counter(zip(prepared.origin_array(), prepared.labels))
    table: dict[str, dict[str, int]] = {}
    for (outlet, label), count in sorted(counts.items()):
        table.setdefault(str(outlet), {})[label] = count
    return table


def check_trainable(prepared: Prepared) -> Counter:
    """The documents per label, once it is clear that there are documents of two labels or more."""
    label_counts = Counter(prepared.labels)
    if not prepared.texts:
        raise QismError("the corpus has no usable documents (all empty or unlabeled)")
    if len(label_counts) < 2:
        raise QismError(f"the corpus has a single label ({next(iter(label_counts))}); a classifier needs at least two")
    return label_counts


def autotune_on_training_split(prepared: Prepared, config: TrainConfig, budget_seconds: float,
                               n_jobs: int | None = None, report: Callable[[str], None] = lambda message: None):
    """`choose_config` on the training split only: the held-out split scores the chosen model, so it
    must not choose it. Returns the chosen configuration and the record of the search."""
    check_trainable(prepared)
    train_rows, _ = split(prepared, config.test_size, config.seed)
    report(f"autotune: cross-validating on the {len(train_rows):,} training documents for up to {budget_seconds:g} s")
    return choose_config([prepared.texts[i] for i in train_rows], [prepared.labels[i] for i in train_rows], config,
                         budget_seconds, sample_weight=training_weights(prepared, config, train_rows),
                         sources=prepared.origin_array()[train_rows], n_jobs=n_jobs, report=report)


def training_weights(prepared: Prepared, config: TrainConfig, rows: np.ndarray) -> np.ndarray | None:
    """Source-balancing sample weights of these rows, when the configuration asks for them."""
    if not config.balance_sources:
        return None
    return source_balancing_weights(np.asarray(prepared.labels, dtype=object)[rows], prepared.origin_array()[rows])


def fit(prepared: Prepared, config: TrainConfig, n_jobs: int | None = None,
        report: Callable[[str], None] = lambda message: None):
    """Fit the pipeline on the train split and score it on the held-out split."""
    config.validate()
    label_counts = check_trainable(prepared)
    train_rows, test_rows = split(prepared, config.test_size, config.seed)
    texts = np.asarray(prepared.texts, dtype=object)
    labels = np.asarray(prepared.labels, dtype=object)
    origins = prepared.origin_array()
    pipeline = config.build_pipeline(n_jobs)
    report(f"fitting on {len(train_rows):,} documents")
    weights = training_weights(prepared, config, train_rows)
    pipeline.fit(texts[train_rows], labels[train_rows], classifier__sample_weight=weights,
                 classifier__sources=origins[train_rows])
    scores = None
    if len(test_rows):
        report(f"scoring on {len(test_rows):,} held-out documents")
        proba = pipeline.predict_proba(texts[test_rows])
        classes = pipeline.classes_
        predicted = classes[proba.argmax(axis=1)]
        scores = score(labels[test_rows], predicted, list(classes), proba=proba)
        if len(set(origins[test_rows])) > 1:
            scores["by_source"] = scores_by_source(labels[test_rows], predicted, origins[test_rows])
    return pipeline, {"train": len(train_rows), "test": len(test_rows)}, dict(sorted(label_counts.items())), scores


def train(sources, config: TrainConfig | None = None, *, read_options: ReadOptions = ReadOptions(),
          source_options: dict[str, ReadOptions] | None = None, label_map=None, n_jobs: int | None = None, name: str = "", autotune: float | None = None,
          report: Callable[[str], None] = lambda message: None) -> Model:
    """Read labeled sources, fit a classifier and return the model with its card (not yet saved).

    `source_options` reads the sources it names with their own options instead of `read_options`.
    `label_map` (a `recipe.LabelMap`) renames and merges labels and drops the ones it does not list.
    `autotune` (seconds) first chooses the classifier, C, class weight and word n-grams by
    cross-validation on the training split, starting from `config`; the card records the search.
    """
    config = config or TrainConfig()
    config.validate()
    if autotune is not None:
        check_budget(autotune)
    started = time.perf_counter()
    sources = [str(source) for source in sources]
    if not sources:
        raise QismError("no training sources given")
    report(f"reading {', '.join(sources)}")
    source_options = source_options or {}
    documents = ((path, doc) for path in sources for doc in read_source(path, source_options.get(path, read_options)))
    if label_map is not None:
        documents = label_map.apply(documents)
    prepared = prepare(documents, config.dedupe)
    if label_map is not None and label_map.unmapped:
        prepared.dropped["unmapped_label"] = sum(label_map.unmapped.values())
    report(f"{len(prepared.texts):,} documents after dropping {sum(prepared.dropped.values()):,}")
    search = None
    if autotune is not None:
        config, search = autotune_on_training_split(prepared, config, autotune, n_jobs, report)
    pipeline, sizes, label_counts, scores = fit(prepared, config, n_jobs, report)
    card = {
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": package_versions(),
        "labels": label_counts,
        "config": config.to_dict(),
        "split": sizes,
        "sources": prepared.sources,
        "documents_by_outlet": documents_by_outlet(prepared),
        "dropped": prepared.dropped,
        "repaired": prepared.repaired,
        "flagged": prepared.flagged,
        "label_merges": prepared.label_merges,
        "empty_label_folders": prepared.empty_label_folders,
        "scores": scores,
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    if label_map is not None:
        card["label_names"] = {label: label_map.names[label] for label in label_counts}
        card["unmapped_labels"] = dict(sorted(label_map.unmapped.items()))
    if search is not None:
        card["autotune"] = search
    return Model(pipeline, card)
