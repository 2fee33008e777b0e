"""Fit a topic classifier on labeled documents: deduplicate, split, featurize, fit, score."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from .autotune import choose_config
from .card import measured_with, new_card
from .classifier import classifier_for
from .clean import ARABIC_LETTER_RE
from .config import ReadOptions, TrainConfig, check_budget, resolve_jobs
from .corpus import EMPTY_LABEL_FOLDER, Document, label_key, read_source, replace_lone_surrogates
from .errors import QismError
from .features import MAX_ARTICLE_CHARS, featurizer_for
from .model import Model, check_model_folder
from .recipe import BENCH_RECORDS, LabelMap, TrainingPlan, plan_training
from .scores import multi_label_score, score, scores_by_outlet
from .streaming import ChunkEngine, check_streaming_config, choose_streaming, fit_streaming


def build_pipeline(config: TrainConfig, n_jobs: int | None = None) -> Pipeline:
    """The unfitted pipeline a configuration asks for: raw text in, calibrated label scores out."""
    return Pipeline([("features", featurizer_for(config, n_jobs)), ("classifier", classifier_for(config, n_jobs))])


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
    outlets: list[str] = field(default_factory=list)
    #: Each kept document's short form (`corpus.SHORT_FORMS`), "" for an article; empty when the
    #: sources gave no short forms.
    parts: list[str] = field(default_factory=list)
    #: Each kept document's article (its row here): itself for an article, so a split by article
    #: keeps a title on its article's side.
    article_of: list[int] = field(default_factory=list)
    #: The dedupe digest of each kept document's text, 16 bytes each, when its text is not kept:
    #: what a second read of the corpus is checked against (see `same_corpus`).
    keys: bytes = b""
    #: Every label of each kept document when the model is multi-label (`labels` holds the first),
    #: else None.
    label_lists: list[tuple[str, ...]] | None = None

    @property
    def is_multi_label(self) -> bool:
        return self.label_lists is not None

    def targets(self, rows: np.ndarray) -> np.ndarray:
        """What the classifier fits for these rows: a label each, or a tuple of labels each."""
        if self.label_lists is None:
            return np.asarray(self.labels, dtype=object)[rows]
        targets = np.empty(len(rows), dtype=object)
        targets[:] = [self.label_lists[i] for i in rows]
        return targets

    def label_counts(self) -> Counter:
        """Documents per label (a document of several labels counts for each)."""
        return Counter(self.labels) if self.label_lists is None else Counter(chain.from_iterable(self.label_lists))

    def outlet_array(self) -> np.ndarray:
        """`outlets` as an array, one (unnamed) outlet when they were not recorded."""
        return np.asarray(self.outlets or [""] * len(self.texts), dtype=object)

    def article_rows(self) -> np.ndarray:
        """The rows that are articles, not short forms."""
        return np.flatnonzero(np.asarray(self.parts, dtype=object) == "") if self.parts else np.arange(len(self.texts))

    def subset(self, rows: np.ndarray) -> Prepared:
        """These rows' documents (with each short form's article among them), to fit on."""
        new_row = {old: new for new, old in enumerate(rows)}
        return Prepared(
            texts=[self.texts[i] for i in rows],
            labels=[self.labels[i] for i in rows],
            sources=[],
            dropped={},
            outlets=[self.outlets[i] for i in rows] if self.outlets else [],
            parts=[self.parts[i] for i in rows] if self.parts else [],
            article_of=[new_row[self.article_of[i]] for i in rows] if self.parts else [],
        )


_WHITESPACE_RE = re.compile(r"\s+")


def _dedupe_key(text: str) -> bytes:
    """Texts equal but for spacing share a key; a digest, so a corpus is not held twice in memory."""
    return hashlib.blake2b(_WHITESPACE_RE.sub(" ", text).strip().encode(), digest_size=16).digest()


_DIGEST_PIECE = 1 << 20


def _add_to_digest(digest, doc: Document) -> None:
    """Add a document to its source's SHA-256 in pieces, so a huge article is not copied whole."""
    label = "\x1d".join(doc.labels) if doc.labels else doc.label  # a list: all its labels
    digest.update(f"{label}\x1f".encode())
    for start in range(0, len(doc.text), _DIGEST_PIECE):
        digest.update(doc.text[start : start + _DIGEST_PIECE].encode())
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


def _labels_of(doc: Document) -> tuple[str, ...]:
    """A document's labels, each once, in the order given: its list, else its one label."""
    return tuple(dict.fromkeys(label for label in (doc.labels or (doc.label,)) if (label or "").strip()))


@dataclass
class _Rows:
    """The documents kept so far, with what deduplication and a split by article need."""

    dedupe: bool
    #: Whether to keep each document's dedupe digest (to deduplicate, or for `same_corpus`).
    keyed: bool
    texts: list = field(default_factory=list)
    labels: list[tuple[str, ...]] = field(default_factory=list)
    outlets: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    article_positions: list[int] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)

    def add(self, text: str, kept_as, labels: tuple[str, ...], outlet: str, part: str, article_position: int) -> None:
        """Keep a document (`kept_as`: its text or its position); `part` is "" for an article."""
        self.texts.append(kept_as)
        self.labels.append(labels)
        self.outlets.append(outlet)
        self.parts.append(part)
        self.article_positions.append(article_position)
        if self.keyed:
            self.keys.append(_dedupe_key(text))

    def columns(self, labels: list, dropped: Counter, multi_label: bool) -> tuple[list, list, list, list, list, list]:
        """Texts, label tuples, outlets, parts, articles' rows and digests of the documents left after
        deduplication (with these labels, spellings merged); parts and articles empty without short forms.
        For a multi-label model a text under several labels is kept once with all of them."""
        if not self.dedupe:
            kept = range(len(self.texts))
        elif multi_label:
            kept, labels = _merge_duplicates(self.keys, labels, dropped)
        else:
            kept = _kept_rows(self.keys, labels, self.parts, dropped)
        kept = _with_their_articles(kept, self.parts, self.article_positions, dropped)
        row_of_article = {self.article_positions[i]: row for row, i in enumerate(kept) if not self.parts[i]}
        has_short_forms = any(self.parts)
        return (
            [self.texts[i] for i in kept],
            [labels[i] for i in kept],
            [self.outlets[i] for i in kept],
            [self.parts[i] for i in kept] if has_short_forms else [],
            [row_of_article[self.article_positions[i]] for i in kept] if has_short_forms else [],
            [self.keys[i] for i in kept] if self.keyed else [],
        )


def _printable_origin(doc: Document, source_path: str) -> tuple[tuple[str, ...], str]:
    """A document's labels (see `_labels_of`) and outlet as the card, outputs and terminal can carry
    them (no lone surrogates)."""
    labels = tuple(replace_lone_surrogates(label) for label in _labels_of(doc))
    return labels, replace_lone_surrogates(doc.outlet or Path(source_path).name)


def prepare(
    documents: Iterable[tuple[str, Document]], dedupe: bool = True, keep_texts: bool = True, multi_label: bool = False
) -> Prepared:
    """Collect labeled documents per source and account for every one: drop binary files, empty and
    unlabeled ones, exact duplicates, and texts that appear under more than one label (they teach
    nothing and leak across a split); merge label spellings; count what is kept but worth a look.
    A short form of an article (`Document.part`) is kept with its article, and dropped with it.

    The model is multi-label when `multi_label` says so or a document lists several labels; then a
    text under several labels is kept once with all of them (`label_lists`, `merged_labels`).

    Without `keep_texts`, `texts` holds each kept document's position in `documents` instead of its
    text, so a corpus larger than memory is accounted for in one pass and read again for its texts."""
    rows = _Rows(dedupe, keyed=dedupe or not keep_texts)
    article_position = -1
    per_source: dict[str, dict] = {}
    ids_seen: set[tuple[str, str]] = set()
    dropped, repaired, flagged = Counter(), Counter(), Counter()
    empty_folders = []
    for position, (source_path, doc) in enumerate(documents):
        if doc.problem == EMPTY_LABEL_FOLDER:
            empty_folders.append(replace_lone_surrogates(f"{source_path}/{doc.id}"))
            continue
        if doc.part is None:
            article_position = position
        elif doc.text and not doc.text.isspace() and _labels_of(doc):  # a short form: not in the source's count
            kept_as = doc.text if keep_texts else position
            rows.add(doc.text, kept_as, *_printable_origin(doc, source_path), doc.part, article_position)
            continue
        entry = per_source.setdefault(
            source_path, {"path": replace_lone_surrogates(source_path), "documents": 0, "sha256": hashlib.sha256()}
        )
        entry["documents"] += 1
        _add_to_digest(entry["sha256"], doc)
        if doc.problem:
            dropped[doc.problem.replace(" ", "_")] += 1
            continue
        doc_labels = _labels_of(doc)
        if not doc_labels:
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
        rows.add(text, text if keep_texts else position, *_printable_origin(doc, source_path), "", position)
    sources = [{**entry, "sha256": entry["sha256"].hexdigest()} for entry in per_source.values()]
    multi_label = multi_label or any(len(doc_labels) > 1 for doc_labels in rows.labels)
    merges = merge_label_spellings(chain.from_iterable(rows.labels))
    repaired["relabeled"] = sum(label in merges for doc_labels in rows.labels for label in doc_labels)
    labels = [tuple(dict.fromkeys(merges.get(label, " ".join(label.split())) for label in ls)) for ls in rows.labels]
    texts, labels, outlets, parts, article_of, keys = rows.columns(labels, dropped, multi_label)
    prepared = Prepared(
        texts,
        [doc_labels[0] for doc_labels in labels],
        sources,
        dict(dropped),
        _nonzero(repaired),
        _nonzero(flagged),
        merges,
        empty_folders,
        outlets,
        parts,
        article_of,
        b"" if keep_texts else b"".join(keys),
    )
    prepared.label_lists = labels if multi_label else None
    return prepared


def _merge_duplicates(keys: list[bytes], labels: list[tuple[str, ...]], dropped: Counter):
    """The rows to keep and every row's labels for a multi-label model: the first of each text, with
    every label any copy of it had, in the order they came (a copy under another label is `merged_labels`)."""
    first: dict[bytes, int] = {}
    merged = list(labels)
    kept = []
    for i, key in enumerate(keys):
        if key not in first:
            first[key] = i
            kept.append(i)
            continue
        union = tuple(dict.fromkeys(merged[first[key]] + labels[i]))
        dropped["merged_labels" if union != merged[first[key]] else "duplicates"] += 1
        merged[first[key]] = union
    return kept, merged


def same_corpus(read: Callable[[], Iterable[tuple[str, Document]]], prepared: Prepared) -> Callable:
    """`read` for a second read of a corpus prepared without its texts, checked to give each kept
    document the text and label the first read gave (a corpus replaced or edited in between would
    train labels of one corpus on texts of another)."""

    def read_again() -> Iterator[tuple[str, Document]]:
        positions, kept = prepared.texts, 0
        for position, (path, doc) in enumerate(read()):
            if kept < len(positions) and position == positions[kept]:
                label = prepared.label_merges.get(doc.label or "", " ".join((doc.label or "").split()))
                key = prepared.keys[16 * kept : 16 * kept + 16]
                if _dedupe_key(doc.text[:MAX_ARTICLE_CHARS]) != key or label != prepared.labels[kept]:
                    raise QismError(
                        f"{path}: changed between the two reads of streaming training (document {position + 1:,} "
                        "is not what the first read gave); train once the corpus is complete and left alone"
                    )
                kept += 1
            yield path, doc

    return read_again


def _kept_rows(keys: list[bytes], labels: list[str], parts: list[str], dropped: Counter) -> list[int]:
    """The rows left once texts found under two labels (all copies) and repeats (all but the first)
    are dropped; a short form's are counted apart from the articles'."""
    labels_of: dict[bytes, set[str]] = {}
    for key, label in zip(keys, labels):
        labels_of.setdefault(key, set()).add(label)
    seen: set[bytes] = set()
    kept = []
    for i, key in enumerate(keys):
        suffix = f"_{parts[i]}" if parts[i] else ""
        if len(labels_of[key]) > 1:
            dropped["label_conflicts" + suffix] += 1
        elif key in seen:
            dropped["duplicates" + suffix] += 1
        else:
            seen.add(key)
            kept.append(i)
    return kept


def _with_their_articles(rows, parts: list[str], article_positions: list[int], dropped: Counter) -> list[int]:
    """The rows without the short forms whose article was dropped (a split by article has no side
    for them)."""
    articles = {article_positions[i] for i in rows if not parts[i]}
    kept = [i for i in rows if not parts[i] or article_positions[i] in articles]
    if len(kept) < len(rows):
        dropped["short_forms_of_dropped_articles"] += len(rows) - len(kept)
    return kept


def _nonzero(counts: Counter) -> dict[str, int]:
    return {key: count for key, count in counts.items() if count}


def split(prepared: Prepared, test_size: float, seed: int):
    """Stratified train/test indices (all rows train when test_size is 0). Articles are split, and
    their short forms train with them or are left out with them: test rows are articles only, so
    held-out scores are articles' and their titles never leak into training."""
    if not prepared.parts:
        return split_rows(prepared.labels, test_size, seed)
    articles = prepared.article_rows()
    train_articles, test_articles = split_rows([prepared.labels[i] for i in articles], test_size, seed)
    article_of = np.asarray(prepared.article_of)
    in_train = np.zeros(len(article_of), dtype=bool)
    in_train[articles[train_articles]] = True
    short_forms = np.flatnonzero((article_of != np.arange(len(article_of))) & in_train[article_of])
    return np.concatenate([articles[train_articles], short_forms]), articles[test_articles]


def short_forms_of(prepared: Prepared, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of these articles' short forms, by form (`corpus.SHORT_FORMS`), in the order of `rows`."""
    position = {article: i for i, article in enumerate(rows)}
    forms: dict[str, list[tuple[int, int]]] = {}
    for row, (part, article) in enumerate(zip(prepared.parts, prepared.article_of)):
        if part and article in position:
            forms.setdefault(part, []).append((position[article], row))
    return {part: np.asarray([row for _, row in sorted(pairs)], dtype=int) for part, pairs in forms.items()}


def split_rows(labels: list[str], test_size: float, seed: int):
    """Stratified train/test indices of documents with these labels."""
    n = len(labels)
    if not test_size:
        return np.arange(n), np.arange(0)
    counts = Counter(labels)
    short = sorted(label for label, count in counts.items() if count < 2)
    if short:
        raise QismError(
            f"label(s) with a single document cannot be split for testing: {', '.join(short)}; "
            "add documents or train with --test-size 0"
        )
    n_test = max(int(round(test_size * n)), len(counts))
    if n - n_test < len(counts):
        raise QismError(f"{n} documents are too few to hold out {test_size:.0%} for testing; use --test-size 0")
    return train_test_split(np.arange(n), test_size=n_test, stratify=labels, random_state=seed)


def outlet_balancing_weights(labels: np.ndarray, outlets: np.ndarray) -> np.ndarray:
    """Sample weights under which every outlet has the same say within each label, so a label that
    one outlet dominates is learned from its topic, not from that outlet's style."""
    groups = Counter(zip(labels, outlets))
    outlets_per_label = Counter(label for label, _ in groups)
    label_sizes = Counter(labels)
    weights = [
        label_sizes[label] / (outlets_per_label[label] * groups[label, outlet])
        for label, outlet in zip(labels, outlets)
    ]
    return np.asarray(weights, dtype=np.float64)


def documents_by_outlet(prepared: Prepared) -> dict[str, dict[str, int]]:
    """Documents per outlet and label: which outlets a label was learned from, and how much of it."""
    counts = Counter(zip(prepared.outlet_array(), prepared.labels))
    table: dict[str, dict[str, int]] = {}
    for (outlet, label), count in sorted(counts.items()):
        table.setdefault(str(outlet), {})[label] = count
    return table


def check_trainable(prepared: Prepared) -> Counter:
    """The documents per label, once it is clear that there are documents of two labels or more."""
    label_counts = prepared.label_counts()
    if not prepared.texts:
        raise QismError("the corpus has no usable documents (all empty or unlabeled)")
    if len(label_counts) < 2:
        raise QismError(f"the corpus has a single label ({next(iter(label_counts))}); a classifier needs at least two")
    return label_counts


def autotune_on_training_split(
    prepared: Prepared,
    config: TrainConfig,
    budget_seconds: float,
    n_jobs: int | None = None,
    report: Callable[[str], None] = lambda message: None,
):
    """`choose_config` on the training split only: the held-out split scores the chosen model, so it
    must not choose it. Returns the chosen configuration and the record of the search."""
    check_trainable(prepared)
    train_rows, _ = split(prepared, config.test_size, config.seed)
    report(f"autotune: cross-validating on the {len(train_rows):,} training documents for up to {budget_seconds:g} s")
    return choose_config(
        [prepared.texts[i] for i in train_rows],
        [prepared.labels[i] for i in train_rows],
        config,
        budget_seconds,
        sample_weight=training_weights(prepared, config, train_rows),
        outlets=prepared.outlet_array()[train_rows],
        n_jobs=n_jobs,
        report=report,
    )


def training_weights(prepared: Prepared, config: TrainConfig, rows: np.ndarray) -> np.ndarray | None:
    """Sample weights of these rows: outlet-balancing when the configuration asks for it, times
    `title_weight` for short forms; None when all are 1."""
    weights = None
    if config.balance_outlets:
        weights = outlet_balancing_weights(
            np.asarray(prepared.labels, dtype=object)[rows], prepared.outlet_array()[rows]
        )
    if prepared.parts and config.title_weight != 1:
        short = np.asarray(prepared.parts, dtype=object)[rows] != ""
        weights = np.ones(len(rows)) if weights is None else weights
        weights[short] *= config.title_weight
    return weights


@dataclass
class Fitted:
    """What every training path returns (in memory, streaming, streaming on a cluster), and the
    trainer turns into a model and its card."""

    pipeline: Pipeline
    #: Documents in the training and held-out splits.
    split: dict[str, int]
    #: Documents per label, before the split.
    labels: dict[str, int]
    #: The held-out scores (None without a held-out split).
    scores: dict | None
    #: Which path fitted the model, and how (the card's `training`).
    training: dict


def fit(
    prepared: Prepared,
    config: TrainConfig,
    n_jobs: int | None = None,
    report: Callable[[str], None] = lambda message: None,
):
    """Fit the pipeline on the train split in memory and score it on the held-out split (a `Fitted`)."""
    label_counts = check_trainable(prepared)
    train_rows, test_rows = split(prepared, config.test_size, config.seed)
    texts = np.asarray(prepared.texts, dtype=object)
    labels = np.asarray(prepared.labels, dtype=object)
    outlets = prepared.outlet_array()
    pipeline = build_pipeline(config, n_jobs)
    report(f"fitting on {len(train_rows):,} documents")
    weights = training_weights(prepared, config, train_rows)
    pipeline.fit(
        texts[train_rows],
        prepared.targets(train_rows),
        classifier__sample_weight=weights,
        classifier__outlets=outlets[train_rows],
    )
    scores = None
    if len(test_rows) and prepared.is_multi_label:
        report(f"scoring on {len(test_rows):,} held-out documents")
        scores = held_out_multi_label_scores(pipeline, texts[test_rows], prepared.targets(test_rows))
    elif len(test_rows):
        report(f"scoring on {len(test_rows):,} held-out documents")
        scores = held_out_scores(
            pipeline.predict_proba(texts[test_rows]), pipeline.classes_, labels[test_rows], outlets[test_rows]
        )
    sizes = {"train": len(train_rows), "test": len(test_rows)}
    return Fitted(pipeline, sizes, dict(sorted(label_counts.items())), scores, {"path": "in-memory"})


def held_out_scores(proba: np.ndarray, classes: np.ndarray, truth: np.ndarray, outlets: np.ndarray) -> dict:
    """The card's scores of held-out documents from their probabilities (by outlet when several)."""
    predicted = classes[proba.argmax(axis=1)]
    scores = score(truth, predicted, list(classes), proba=proba)
    if len(set(outlets)) > 1:
        scores["by_outlet"] = scores_by_outlet(truth, predicted, outlets)
    return scores


def held_out_multi_label_scores(pipeline: Pipeline, texts: np.ndarray, label_lists: np.ndarray) -> dict:
    """The card's scores of a multi-label model on held-out documents (see `scores.multi_label_score`)."""
    classifier = pipeline.named_steps["classifier"]
    return multi_label_score(
        classifier.label_columns(label_lists),
        pipeline.predict(texts).astype(bool),
        [str(c) for c in classifier.classes_],
    )


def fit_streamed(
    prepared: Prepared,
    config: TrainConfig,
    read_again,
    n_jobs: int | None = None,
    report: Callable[[str], None] = lambda message: None,
    engine: ChunkEngine | None = None,
):
    """`fit` for a corpus prepared without its texts (`prepare(..., keep_texts=False)`), which
    `read_again` reads anew: the same split and weights, fitted in bounded memory (see `streaming`)."""
    label_counts = check_trainable(prepared)
    train_rows, test_rows = split(prepared, config.test_size, config.seed)
    pipeline = build_pipeline(config, n_jobs)
    report(f"fitting on {len(train_rows):,} documents, streaming")
    labels, outlets = np.asarray(prepared.labels, dtype=object), prepared.outlet_array()
    order, proba, run = fit_streaming(
        pipeline,
        config,
        read_again,
        positions=np.asarray(prepared.texts),
        labels=labels,
        outlets=outlets,
        train_rows=train_rows,
        test_rows=test_rows,
        sample_weight=training_weights(prepared, config, train_rows),
        report=report,
        engine=engine,
    )
    scores = held_out_scores(proba, pipeline.classes_, labels[order], outlets[order]) if len(order) else None
    sizes = {"train": len(train_rows), "test": len(test_rows)}
    return Fitted(pipeline, sizes, dict(sorted(label_counts.items())), scores, {"path": "streaming", **run})


def train(
    sources,
    config: TrainConfig | None = None,
    *,
    read_options: ReadOptions = ReadOptions(),
    source_options: dict[str, ReadOptions] | None = None,
    label_map: LabelMap | None = None,
    n_jobs: int | None = None,
    name: str = "",
    autotune: float | None = None,
    notes: list[str] | None = None,
    streaming: bool | None = None,
    memory_budget: int | str | None = None,
    engine: ChunkEngine | None = None,
    unseen_outlets: dict | None = None,
    short_input: dict | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> Model:
    """Read labeled sources, fit a classifier and return the model with its card (not yet saved).

    `source_options` reads the sources it names with their own options instead of `read_options`.
    `label_map` renames and merges labels and drops the ones it does not list. `autotune` (seconds)
    first chooses the classifier, C, class weight and word n-grams by cross-validation on the
    training split, starting from `config`; the card records the search. `notes` go in the card.
    `streaming` trains in bounded memory (see `streaming`); None streams only when the in-memory fit
    would need more than `memory_budget` (bytes, or a size such as 8GB; default: half the machine's
    memory). The card's `training` says which path ran. `engine` runs streaming's work on each chunk
    elsewhere (a Dask cluster, see `cluster`); it implies streaming. `unseen_outlets`, scores of
    these sources and configuration on outlets left out (`card.check_unseen_outlets`), and
    `short_input`, on short input (`card.check_short_input`), go in the card.
    """
    config = config if config is not None else TrainConfig()
    budget = check_budget(autotune) if autotune is not None else None
    resolve_jobs(n_jobs)  # refuses 0 and below -1 before the corpus is read
    started = time.perf_counter()
    sources = [str(source) for source in sources]
    if not sources:
        raise QismError("no training sources given")
    if engine is not None and streaming is False:
        raise QismError("training on a cluster streams the corpus; drop --in-memory")
    streaming, memory_budget = choose_streaming(sources, True if engine is not None else streaming, memory_budget)
    if streaming:
        check_streaming_config(config, autotune)
    dropped_by_map = Counter()
    source_options = source_options or {}

    def read():
        documents = (
            (path, doc) for path in sources for doc in read_source(path, source_options.get(path, read_options))
        )
        return label_map.apply(documents, dropped_by_map) if label_map is not None else documents

    report(f"reading {', '.join(sources)}")
    prepared = prepare(read(), config.dedupe, keep_texts=not streaming, multi_label=config.multi_label)
    unmapped = Counter(dropped_by_map)  # what one read drops (streaming reads again)
    if unmapped:
        prepared.dropped["unmapped_label"] = sum(unmapped.values())
    report(f"{len(prepared.texts):,} documents after dropping {sum(prepared.dropped.values()):,}")
    config = check_multi_label(prepared, config, streaming, budget, report)
    search = None
    if budget is not None:
        config, search = autotune_on_training_split(prepared, config, budget, n_jobs, report)
    if streaming:
        fitted = fit_streamed(prepared, config, same_corpus(read, prepared), n_jobs, report, engine)
    else:
        fitted = fit(prepared, config, n_jobs, report)
    data = {
        "dropped": prepared.dropped,
        "repaired": prepared.repaired,
        "flagged": prepared.flagged,
        "label_merges": prepared.label_merges,
        "empty_label_folders": prepared.empty_label_folders,
        "documents_by_outlet": documents_by_outlet(prepared),
        **several_labels(prepared),
    }
    card = new_card(
        name=name,
        config=config.to_dict(),
        labels=fitted.labels,
        split=fitted.split,
        sources=prepared.sources,
        scores=fitted.scores,
        seconds=time.perf_counter() - started,
        data=data,
        label_map=label_map,
        unmapped=unmapped,
        autotune=search,
        notes=notes,
        unseen_outlets=unseen_outlets,
        short_input=short_input,
    )
    card["training"] = {**fitted.training, "memory_budget": memory_budget}
    return Model(fitted.pipeline, card)


def several_labels(prepared: Prepared) -> dict:
    """For a multi-label model's card: how many training articles have several labels."""
    if not prepared.is_multi_label:
        return {}
    return {"several_labels": sum(len(labels) > 1 for labels in prepared.label_lists)}


def check_multi_label(prepared: Prepared, config: TrainConfig, streaming: bool, budget, report) -> TrainConfig:
    """The configuration to fit: multi-label when the data lists several labels for an article (said
    in the progress and, through the configuration, in the card), refusing what multi-label
    training does not do yet."""
    if not prepared.is_multi_label:
        return config
    if not config.multi_label:
        several = sum(len(labels) > 1 for labels in prepared.label_lists)
        report(f"multi-label: {several:,} articles have several labels, so each label gets its own threshold")
        config = replace(config, multi_label=True)
    if streaming:
        raise QismError(
            "multi-label training runs in memory, not streaming or on a cluster: train with --in-memory "
            "and without --engine dask"
        )
    if budget is not None:
        raise QismError("--autotune chooses single-label models; drop it for multi-label data")
    return config


def bench_record_for_card(plan: TrainingPlan, key: str, autotuned: bool, notice: Callable[[str], None]) -> dict | None:
    """The recipe's record of a bench (`recipe.BENCH_RECORDS`: scores on outlets left out, on short
    input), if it was measured on what this training fits: its sources, their read options, the
    configuration and label map (an autotuned configuration is not known before)."""
    file, record = getattr(plan, f"{key}_file"), getattr(plan, key)
    if file is None:
        return None
    bench = BENCH_RECORDS[key][0]
    if record is None:
        notice(f"{file}: not made yet, so the card lacks its scores (python {bench} --save {file})")
        return None
    label_map = plan.label_map.to_dict() if plan.label_map is not None else None
    if autotuned or not measured_with(
        record, plan.sources, plan.config.to_dict(), label_map, plan.source_options_dict()
    ):
        notice(
            f"{file} was measured with other sources, options or labels: it stays out of "
            f"the card ({bench} --save measures it again)"
        )
        return None
    return record


def train_and_save(
    out: str | os.PathLike,
    sources=(),
    *,
    recipe: str | os.PathLike | None = None,
    label_map: str | os.PathLike | None = None,
    train_options: dict | None = None,
    read_options: dict | None = None,
    n_jobs: int | None = None,
    autotune: float | None = None,
    streaming: bool | None = None,
    memory_budget: int | str | None = None,
    engine: ChunkEngine | None = None,
    report: Callable[[str], None] = lambda message: None,
    notice: Callable[[str], None] = lambda message: None,
) -> Model:
    """`qism train`: merge a recipe with the options given (see `recipe.plan_training`), train, and
    save the model in `out`. Every option is checked before any corpus is read. `report` gets
    progress, `notice` what a user should read (the recipe's scores on outlets left out cannot go in
    the card)."""
    plan: TrainingPlan = plan_training(
        sources, recipe=recipe, label_map=label_map, train_options=train_options, read_options=read_options
    )
    check_model_folder(out, plan.sources)  # before hours of training, not after
    n_jobs = resolve_jobs(n_jobs)
    unseen = bench_record_for_card(plan, "unseen_outlets", autotune is not None, notice)
    short_input = bench_record_for_card(plan, "short_input", autotune is not None, notice)
    model = train(
        plan.sources,
        plan.config,
        read_options=plan.read_options,
        source_options=plan.source_options,
        label_map=plan.label_map,
        n_jobs=n_jobs,
        name=Path(out).name,
        autotune=autotune,
        notes=plan.notes,
        streaming=streaming,
        memory_budget=memory_budget,
        engine=engine,
        unseen_outlets=unseen,
        short_input=short_input,
        report=report,
    )
    report(f"saving to {out}")
    model.save(out)
    return model
