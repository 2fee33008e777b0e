"""Train on a corpus larger than memory: count it in chunks, fit shard models, average them.

The in-memory fit holds every text, its cleaned form and the whole TF-IDF matrix at once (about 8 to
12 bytes of memory per byte of input). Streaming holds one chunk of documents at a time:

1. `prepare` accounts for the corpus in one read, keeping per kept document its label, outlet and
   position in the input and a 16-byte dedupe digest (so ~100-250 bytes per document stay in memory:
   a million documents fit in a few hundred MB), and the split is drawn exactly as in memory.
2. A second read cleans each chunk, spills the cleaned texts to a temporary folder and counts the
   articles' edge segments (learned boilerplate).
3. A pass over the spill counts each chunk's hashed terms and sums exact statistics: document
   frequencies per label (which give the IDF, the kept buckets and the NB log-count ratios); each
   document's counts go to the spill file of its shard (shards are random, so each has every label).
4. One linear model is fitted per shard (at most `shard_documents` documents: this bounds memory),
   with the corpus-wide NB ratios and sample weights; the models are averaged, weighted by size
   (SGD, the default, instead runs `partial_fit` epochs over the shards, which measures better).
   The calibration share is held out as its own shards: its decisions under the average of the other
   shards fit the temperature, then its shard models join the average.

Every step of the fit is the classifier's own (`LinearClassifier`'s weights, label masks, calibration
split, NB ratios, `fit_weights`, `fit_epoch` and `calibrate`, which its in-memory `fit` runs too);
this module reads, chunks, spills, counts and drives them over the shards.

Peak memory is one chunk, one shard's matrix and the per-label frequency table, whatever the corpus
size; the spill folder on disk holds about the input's text and its counts. The input is read twice,
so it must be files (not standard input).
"""

from __future__ import annotations

import functools
import os
import pickle
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from .classifier import SGD_EPOCHS, documents_per_label
from .config import parse_size
from .corpus import Document
from .errors import QismError
from .features import clean_all
from .features.boilerplate import count_edge_segments, frequent_segments

#: Documents read, cleaned and counted at a time.
CHUNK_DOCUMENTS = 5000
#: Training documents per shard model: large enough that a shard model is close to one fitted on all,
#: small enough that a shard's matrix (a few KB per document) and its copies fit in a few hundred MB.
SHARD_DOCUMENTS = 40_000
#: Measured peak memory of the in-memory fit per byte of (uncompressed) input, with some margin.
MEMORY_PER_INPUT_BYTE = 12
#: The share of the machine's memory the in-memory fit may take before training streams.
MEMORY_SHARE = 0.5
#: Classifiers whose shard models can be averaged (linear weights and a bias).
STREAMING_CLASSIFIERS = ("sgd", "linear_svc", "logreg")


def machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def default_memory_budget() -> int:
    return int(machine_memory() * MEMORY_SHARE) or 4 << 30


def _gzip_size(path: Path) -> int:
    """The uncompressed size a gzip file records (modulo 4 GB; at least its compressed size)."""
    with open(path, "rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return max(int.from_bytes(handle.read(4), "little"), path.stat().st_size)


def input_bytes(sources: Iterable[str]) -> int:
    """About how many bytes of text the sources hold, uncompressed, without reading them."""
    total = 0
    for source in sources:
        path = Path(source)
        try:
            if path.is_dir():
                total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            elif not path.is_file():
                continue  # a FIFO or device is not measured: measuring would read it
            elif path.suffix == ".gz":
                total += _gzip_size(path)
            elif zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    total += sum(info.file_size for info in archive.infolist())
            elif path.is_file():
                total += path.stat().st_size
        except (OSError, zipfile.BadZipFile, RecursionError, ValueError):
            continue  # too deep, unreadable or damaged: reading it will say what is wrong
    return total


def _read_once(path: Path) -> bool:
    """Whether a source can be read only once: it is there, but neither a regular file nor a folder."""
    return path.exists() and not (path.is_file() or path.is_dir())


def choose_streaming(sources: list[str], streaming: bool | None, memory_budget: int | str | None) -> tuple[bool, int]:
    """Whether to train streaming (asked, or the in-memory fit would not fit the budget) and the budget."""
    budget = parse_size(memory_budget) if memory_budget is not None else default_memory_budget()
    once = [source for source in sources if source == "-" or _read_once(Path(source))]
    if streaming is None:
        streaming = not once and input_bytes(sources) * MEMORY_PER_INPUT_BYTE > budget
    if streaming and once:
        what = "standard input" if once[0] == "-" else f"{once[0]} (not a regular file: a pipe, FIFO or device)"
        raise QismError(f"--streaming reads the corpus twice, which {what} cannot be; save it to a file")
    return streaming, budget


def check_streaming_config(config, autotune: float | None) -> None:
    """What streaming training (asked for, or chosen for a corpus over the memory budget) cannot do."""
    if config.classifier not in STREAMING_CLASSIFIERS:
        raise QismError(
            f"streaming training (--streaming, or a corpus over --memory-budget) fits linear learners: "
            f"use --classifier {' or '.join(STREAMING_CLASSIFIERS)}, not {config.classifier}"
        )
    if autotune is not None:
        raise QismError(
            "--autotune cross-validates in memory; it cannot be combined with streaming training "
            "(--streaming, or a corpus over --memory-budget)"
        )


# --- spill files: pickled pieces, read back one at a time -------------------------------------


def _pieces(path: Path) -> Iterator:
    if not path.exists():
        return
    with open(path, "rb") as handle:
        while True:
            try:
                yield pickle.load(handle)
            except EOFError:
                return


def _chunks(documents: Iterator[tuple[str, Document]], positions: np.ndarray) -> Iterator[tuple[np.ndarray, list[str]]]:
    """(kept indices, texts) of the kept documents, `CHUNK_DOCUMENTS` at a time, from a new read of
    the corpus; `positions` are the kept documents' positions in it (ascending)."""
    indices, texts = [], []
    kept = 0
    for position, (_, doc) in enumerate(documents):
        if kept == len(positions):
            break
        if position == positions[kept]:
            indices.append(kept)
            texts.append(doc.text)
            kept += 1
            if len(texts) == CHUNK_DOCUMENTS:
                yield np.asarray(indices), texts
                indices, texts = [], []
    if texts:
        yield np.asarray(indices), texts
    if kept != len(positions):
        raise QismError("the corpus changed while training read it again; train once it is complete")


def clean_chunk(featurizer, indices: np.ndarray, texts: list[str], training: np.ndarray, count_segments: bool):
    """A chunk's cleaned texts, and the edge segments of its training documents (for boilerplate)."""
    cleaned = clean_all(featurizer, texts)
    segments = count_edge_segments(t for t, keep in zip(cleaned, training) if keep) if count_segments else Counter()
    return indices, cleaned, segments


def count_chunk(featurizer, indices: np.ndarray, cleaned: list[str]):
    """A chunk's term counts, without the learned boilerplate."""
    return indices, featurizer.count(cleaned, cleaned=True)


class ChunkEngine:
    """Where streaming's tasks run (cleaning and counting each chunk, fitting each shard model that is
    averaged): here, on the featurizer's processes. `cluster.DaskChunks` runs them on a Dask cluster."""

    name = "local"

    def map(self, function: Callable, featurizer, arguments: Iterable[tuple]) -> Iterator:
        """`function(featurizer, *args)` for each tuple of arguments, results in order."""
        return (function(featurizer, *args) for args in arguments)


class _Plan:
    """Which shard each kept document goes to: fit shards, then calibration shards, or -1 (test).
    The calibration rows are those the classifier holds out in memory (`calibration_split`)."""

    def __init__(self, classifier, y_train: np.ndarray, train_rows: np.ndarray, n_kept: int, shard_documents: int):
        local = np.arange(len(train_rows))
        split = classifier.calibration_split(y_train)
        fit_local, held_local = split if split is not None else (local, local[:0])
        rng = np.random.default_rng(classifier.random_state)
        fit_shards = np.array_split(rng.permutation(fit_local), max(1, -(-len(fit_local) // shard_documents)))
        held_shards = (
            np.array_split(rng.permutation(held_local), -(-len(held_local) // shard_documents))
            if len(held_local)
            else []
        )
        self.shards = [np.sort(rows) for rows in [*fit_shards, *held_shards]]
        self.n_fit_shards = len(fit_shards)
        self.calibrated = bool(len(held_local))
        self.shard_of = np.full(n_kept, -1, dtype=np.int32)  # by kept document
        self.local_of = np.full(n_kept, -1, dtype=np.int64)  # its row among the training rows
        self.local_of[train_rows] = local
        for number, rows in enumerate(self.shards):
            self.shard_of[train_rows[rows]] = number


@dataclass
class _Shards:
    """The training shards in the spill folder, and what every fit on them takes over the whole
    training split: label indices, document weights, label masks and NB ratios."""

    spill: Path
    y: np.ndarray
    weights: np.ndarray | None
    masks: np.ndarray | None
    ratios: np.ndarray | None

    def load(self, number: int) -> tuple[np.ndarray, sp.csr_matrix]:
        """A shard's training rows and their features."""
        return next(_pieces(self.spill / f"shard-{number}"))

    def fit_arguments(self, local: np.ndarray) -> tuple:
        """(labels, weights, masks, ratios) of these training rows, as `LinearClassifier.fit_weights`
        and `fit_epoch` take them."""
        weights = None if self.weights is None else self.weights[local]
        return self.y[local], weights, None if self.masks is None else self.masks[:, local], self.ratios


def fit_shard(classifier, X, *arguments):
    """One shard's linear model and its size: a task `ChunkEngine.map` runs here or on a cluster."""
    return X.shape[0], classifier.fit_weights(X, *arguments)


def _averaged(classifier, shards: _Shards, engine, report, fitted: dict, numbers: list[int]):
    """One model per shard, fitted where `engine` runs tasks, averaged by shard size. `fitted` keeps
    the size-weighted sum of the shard models fitted so far, so a later call for more shards fits
    only the new ones."""
    new = [number for number in numbers if number not in fitted.setdefault("shards", set())]

    def tasks():
        for number in new:
            local, X = shards.load(number)
            report(f"streaming: fitting shard {number + 1} ({len(local):,} documents)")
            yield (X, *shards.fit_arguments(local))

    for size, (coef, intercept) in engine.map(fit_shard, classifier, tasks()):
        fitted["coef"] = fitted.get("coef", 0.0) + coef.astype(np.float64) * size
        fitted["intercept"] = fitted.get("intercept", 0.0) + intercept.astype(np.float64) * size
        fitted["n"] = fitted.get("n", 0) + size
    fitted["shards"].update(new)
    if fitted["shards"] != set(numbers):
        raise ValueError("shards must be asked for in growing sets")
    return (fitted["coef"] / fitted["n"]).astype(np.float32), (fitted["intercept"] / fitted["n"]).astype(np.float32)


def _sgd_epochs(classifier, shards: _Shards, report, numbers: list[int]):
    """SGD over all shards (`LinearClassifier.fit_epoch`): each epoch visits the shards in a new
    order, one pass over each, so the learning rate and regularization see the whole corpus, as in memory."""
    learner = clone(classifier)
    learner.classes_ = classifier.classes_
    rng = np.random.default_rng(classifier.random_state)
    for epoch in range(SGD_EPOCHS):
        report(f"streaming: SGD epoch {epoch + 1} of {SGD_EPOCHS} over {len(numbers)} shards")
        for number in rng.permutation(numbers):
            local, X = shards.load(int(number))
            learner.fit_epoch(X, *shards.fit_arguments(local))
    return learner.coef_, learner.intercept_


@dataclass
class _Run:
    """One streaming fit's spill folder, shard plan, and where its tasks run and progress goes."""

    spill: Path
    plan: _Plan
    engine: ChunkEngine
    report: Callable[[str], None]


def _fit_classifier(run: _Run, classifier, shards: _Shards) -> str:
    """Fit the classifier on the shards and calibrate it on the calibration shards (with the model of
    the others), as `LinearClassifier.fit` does in memory; returns how the shards were fitted."""
    plan = run.plan
    if classifier.kind == "sgd" and len(plan.shards) > 1:
        fitting, fit_on = "partial_fit epochs", functools.partial(_sgd_epochs, classifier, shards, run.report)
    else:
        fitting = "averaged shard models"
        fit_on = functools.partial(_averaged, classifier, shards, run.engine, run.report, {})
    held = ()
    if plan.calibrated:
        classifier.coef_, classifier.intercept_ = fit_on(list(range(plan.n_fit_shards)))
        decisions, truth = [], []
        for number in range(plan.n_fit_shards, len(plan.shards)):
            local, X = shards.load(number)
            decisions.append(classifier.decision_function(X))
            truth.append(shards.y[local])
        held = (np.vstack(decisions), np.concatenate(truth))
    classifier.calibrate(*fit_on(list(range(len(plan.shards)))), *held)
    return fitting


def _spill_cleaned(run: _Run, featurizer, config, read_again, positions) -> None:
    """Read the corpus again: clean each chunk, spill the cleaned texts, and learn the boilerplate
    from the edge segments of the training documents."""
    featurizer.boilerplate_ = np.empty(0, dtype=np.uint64)
    segments = Counter()
    chunks = (
        (indices, texts, run.plan.shard_of[indices] >= 0, bool(config.boilerplate_min_docs))
        for indices, texts in _chunks(read_again(), np.asarray(positions))
    )
    with open(run.spill / "cleaned", "wb") as handle:
        for done, (indices, cleaned, chunk_segments) in enumerate(run.engine.map(clean_chunk, featurizer, chunks), 1):
            segments.update(chunk_segments)
            pickle.dump((indices, cleaned), handle, protocol=pickle.HIGHEST_PROTOCOL)
            run.report(
                f"streaming: cleaned {min(done * CHUNK_DOCUMENTS, len(positions)):,} of {len(positions):,} documents"
            )
    if config.boilerplate_min_docs:
        featurizer.boilerplate_ = frequent_segments(segments, config.boilerplate_min_docs)
    featurizer._boilerplate_set = None


def _count_into_shards(run: _Run, featurizer, label_index: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """Count each cleaned chunk's terms into its shards' files (and the test file); returns the
    per-label document frequencies of the training documents."""
    plan, spill, n_classes, n_kept = run.plan, run.spill, int(label_index.max()) + 1, len(label_index)
    per_label = np.zeros((n_classes, featurizer.n_buckets), dtype=np.float32)
    shard_files = [open(spill / f"shard-{n}", "wb") for n in range(len(plan.shards))]
    try:
        with open(spill / "test", "wb") as test_file:
            for done, (indices, counts) in enumerate(
                run.engine.map(count_chunk, featurizer, _pieces(spill / "cleaned")), 1
            ):
                training = plan.shard_of[indices] >= 0
                if training.any():
                    per_label += documents_per_label(counts[training], label_index[indices[training]], n_classes)
                for number in np.unique(plan.shard_of[indices][training]):
                    rows = plan.shard_of[indices] == number
                    pieces = (plan.local_of[indices[rows]], counts[rows])
                    pickle.dump(pieces, shard_files[number], protocol=pickle.HIGHEST_PROTOCOL)
                if is_test[indices].any():
                    pieces = (indices[is_test[indices]], counts[is_test[indices]])
                    pickle.dump(pieces, test_file, protocol=pickle.HIGHEST_PROTOCOL)
                run.report(f"streaming: counted {min(done * CHUNK_DOCUMENTS, n_kept):,} of {n_kept:,} documents")
    finally:
        for handle in shard_files:
            handle.close()
    (spill / "cleaned").unlink()
    return per_label


def _weigh_shards(run: _Run, featurizer) -> None:
    """Turn each shard's counts into its features once, in the split's order (as the in-memory fit sees them)."""
    for number in range(len(run.plan.shards)):
        pieces = list(_pieces(run.spill / f"shard-{number}"))
        local = np.concatenate([piece[0] for piece in pieces])
        order = np.argsort(local, kind="stable")
        features = featurizer.weigh(sp.vstack([piece[1] for piece in pieces], format="csr")[order])
        del pieces
        with open(run.spill / f"shard-{number}", "wb") as handle:
            pickle.dump((local[order], features), handle, protocol=pickle.HIGHEST_PROTOCOL)
        del features


def fit_streaming(
    pipeline,
    config,
    read_again: Callable[[], Iterator[tuple[str, Document]]],
    *,
    positions: np.ndarray,
    labels: np.ndarray,
    outlets: np.ndarray,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    sample_weight: np.ndarray | None = None,
    report: Callable[[str], None] = lambda message: None,
    shard_documents: int | None = None,
    engine: ChunkEngine | None = None,
):
    """Fit `pipeline` (unfitted) on the training rows of a corpus that `read_again` reads anew, whose
    kept documents are at `positions` in it, with `labels` and `outlets` per kept document. The
    classifier's own methods weigh, mask, fit and calibrate; this reads, chunks, spills, counts and
    drives them over the shards.

    Returns the held-out rows in the order they were scored, their probabilities, and what the card
    says of the run."""
    shard_documents = shard_documents or SHARD_DOCUMENTS
    engine = engine or ChunkEngine()
    featurizer, classifier = pipeline.named_steps["features"], pipeline.named_steps["classifier"]
    labels, train_rows = np.asarray(labels, dtype=str), np.asarray(train_rows)
    classifier.classes_, y_train = np.unique(labels[train_rows], return_inverse=True)
    plan = _Plan(classifier, y_train, train_rows, len(labels), shard_documents)
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_rows] = True
    label_index = np.full(len(labels), -1, dtype=np.int64)
    label_index[train_rows] = y_train
    spill = Path(tempfile.mkdtemp(prefix="qism-streaming-"))
    run = _Run(spill, plan, engine, report)
    try:
        _spill_cleaned(run, featurizer, config, read_again, positions)
        per_label = _count_into_shards(run, featurizer, label_index, is_test)
        featurizer.fit_counts(per_label.sum(axis=0, dtype=np.float64).astype(np.int64), len(train_rows))
        ratios = classifier.nb_ratios(per_label[:, featurizer.columns_])
        del per_label
        _weigh_shards(run, featurizer)
        shards = _Shards(
            spill,
            y_train,
            classifier.document_weights(y_train, sample_weight),
            classifier.label_masks(y_train, np.asarray(outlets)[train_rows]),
            ratios,
        )
        fitting = _fit_classifier(run, classifier, shards)
        order, probas = [], []
        if len(test_rows):
            report(f"streaming: scoring on {len(test_rows):,} held-out documents")
            for indices, counts in _pieces(spill / "test"):
                order.append(indices)
                probas.append(classifier.predict_proba(featurizer.weigh(counts)))
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    info = {
        "chunks_on": engine.name,
        "fit": fitting,
        "shard_fits_on": engine.name if fitting == "averaged shard models" else "local",
        "shards": len(plan.shards),
        "shard_documents": shard_documents,
        "calibration_shards": len(plan.shards) - plan.n_fit_shards,
    }
    if not order:
        return np.empty(0, dtype=np.int64), np.empty((0, len(classifier.classes_))), info
    return np.concatenate(order), np.vstack(probas), info
