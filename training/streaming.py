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
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.model_selection import train_test_split

from .classifier import (
    MIN_CALIBRATION_DOCS,
    ONE_VS_REST,
    SGD_EPOCHS,
    _make_estimator,
    balanced_weights,
    documents_per_label,
    fit_class_scaling,
    fit_temperature,
    nb_ratios_from_counts,
    outlet_label_masks,
)
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
    """Which shard each kept document goes to: fit shards, then calibration shards, or -1 (test)."""

    def __init__(
        self,
        y_train: np.ndarray,
        train_rows: np.ndarray,
        n_kept: int,
        calibration_size: float,
        shard_documents: int,
        seed: int,
    ):
        n_train = len(train_rows)
        counts = np.bincount(y_train)
        n_held = int(round(calibration_size * n_train))
        local = np.arange(n_train)
        if calibration_size and n_held >= MIN_CALIBRATION_DOCS and counts.min() >= 2:
            # the same rows the in-memory classifier holds out
            fit_local, held_local = train_test_split(local, test_size=n_held, stratify=y_train, random_state=seed)
        else:
            fit_local, held_local = local, local[:0]
        rng = np.random.default_rng(seed)
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


def fit_shard(classifier, X, y, n_classes: int, weights, masks, ratios):
    """One shard's linear model and its size: a task `ChunkEngine.map` runs here or on a cluster."""
    return len(y), classifier._fit_weights(X, y, n_classes, weights, masks, ratios)


def _averaged(classifier, load_shard, y_train, n_classes, weights, masks, ratios, report, engine, shards, fitted: dict):
    """One model per shard, fitted where `engine` runs tasks, averaged by shard size. `fitted` keeps
    the size-weighted sum of the shard models fitted so far, so a later call for more shards fits
    only the new ones."""
    new = [number for number in shards if number not in fitted.setdefault("shards", set())]

    def tasks():
        for number in new:
            local, X = load_shard(number)
            report(f"streaming: fitting shard {number + 1} ({len(local):,} documents)")
            yield (
                X,
                y_train[local],
                n_classes,
                None if weights is None else weights[local],
                None if masks is None else masks[:, local],
                ratios,
            )

    for size, (coef, intercept) in engine.map(fit_shard, classifier, tasks()):
        fitted["coef"] = fitted.get("coef", 0.0) + coef.astype(np.float64) * size
        fitted["intercept"] = fitted.get("intercept", 0.0) + intercept.astype(np.float64) * size
        fitted["n"] = fitted.get("n", 0) + size
    fitted["shards"].update(new)
    if fitted["shards"] != set(shards):
        raise ValueError("shards must be asked for in growing sets")
    return (fitted["coef"] / fitted["n"]).astype(np.float32), (fitted["intercept"] / fitted["n"]).astype(np.float32)


def _partial_fit_label(estimator, X, target, weight, ratios):
    if ratios is not None:  # scaled values on the shard's own index arrays, which are not copied
        X = sp.csr_matrix((X.data * np.take(ratios, X.indices), X.indices, X.indptr), shape=X.shape)
    estimator.partial_fit(X, target, classes=np.array([False, True]), sample_weight=weight)


def _sgd_epochs(classifier, load_shard, y_train, n_classes, weights, masks, ratios, seed, report, shards):
    """One-vs-rest SGD over all shards: each epoch visits the shards in a new order, one pass over each
    (`partial_fit`), so the learning rate and regularization see the whole corpus, as in memory."""
    estimators = [_make_estimator("sgd", classifier.C, classifier.random_state) for _ in range(n_classes)]
    rng = np.random.default_rng(seed)
    for epoch in range(SGD_EPOCHS):
        report(f"streaming: SGD epoch {epoch + 1} of {SGD_EPOCHS} over {len(shards)} shards")
        for number in rng.permutation(shards):
            local, X = load_shard(int(number))
            y = y_train[local]
            base = None if weights is None else weights[local]
            label_weights = [
                base if masks is None else masks[k, local] if base is None else base * masks[k, local]
                for k in range(n_classes)
            ]
            Parallel(n_jobs=classifier.n_jobs, prefer="threads")(
                delayed(_partial_fit_label)(
                    estimators[k], X, y == k, label_weights[k], None if ratios is None else ratios[k]
                )
                for k in range(n_classes)
            )
    coef = np.vstack([e.coef_[0] if ratios is None else e.coef_[0] * ratios[k] for k, e in enumerate(estimators)])
    return coef.astype(np.float32), np.asarray([e.intercept_[0] for e in estimators], dtype=np.float32)


def fit_streaming(
    pipeline,
    config,
    read_again: Callable[[], Iterator[tuple[str, Document]]],
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
    kept documents are at `positions` in it, with `labels` and `outlets` per kept document.

    Returns the held-out rows in the order they were scored, their probabilities, and what the card
    says of the run."""
    shard_documents = shard_documents or SHARD_DOCUMENTS
    engine = engine or ChunkEngine()
    featurizer, classifier = pipeline.named_steps["features"], pipeline.named_steps["classifier"]
    labels = np.asarray(labels, dtype=str)
    train_rows = np.asarray(train_rows)
    classes, y_train = np.unique(labels[train_rows], return_inverse=True)
    n_classes = len(classes)
    plan = _Plan(y_train, train_rows, len(labels), config.calibration_size, shard_documents, config.seed)
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_rows] = True
    spill = Path(tempfile.mkdtemp(prefix="qism-streaming-"))
    try:
        # read again: clean, spill the cleaned texts, count edge segments of the training documents
        featurizer.boilerplate_ = np.empty(0, dtype=np.uint64)
        segments = Counter()
        chunks = (
            (indices, texts, plan.shard_of[indices] >= 0, bool(config.boilerplate_min_docs))
            for indices, texts in _chunks(read_again(), np.asarray(positions))
        )
        with open(spill / "cleaned", "wb") as handle:
            for done, (indices, cleaned, chunk_segments) in enumerate(engine.map(clean_chunk, featurizer, chunks), 1):
                segments.update(chunk_segments)
                pickle.dump((indices, cleaned), handle, protocol=pickle.HIGHEST_PROTOCOL)
                report(f"streaming: cleaned {min(done * CHUNK_DOCUMENTS, len(labels)):,} of {len(labels):,} documents")
        if config.boilerplate_min_docs:
            featurizer.boilerplate_ = frequent_segments(segments, config.boilerplate_min_docs)
        del segments
        featurizer._boilerplate_set = None
        # count terms: per-label document frequencies, and each document's counts to its shard's file
        per_label = np.zeros((n_classes, featurizer.n_buckets), dtype=np.float32)
        label_index = np.full(len(labels), -1, dtype=np.int64)
        label_index[train_rows] = y_train
        shard_files = [open(spill / f"shard-{n}", "wb") for n in range(len(plan.shards))]
        try:
            with open(spill / "test", "wb") as test_file:
                for done, (indices, counts) in enumerate(
                    engine.map(count_chunk, featurizer, _pieces(spill / "cleaned")), 1
                ):
                    training = plan.shard_of[indices] >= 0
                    if training.any():
                        per_label += documents_per_label(counts[training], label_index[indices[training]], n_classes)
                    for number in np.unique(plan.shard_of[indices][training]):
                        rows = plan.shard_of[indices] == number
                        pickle.dump(
                            (plan.local_of[indices[rows]], counts[rows]),
                            shard_files[number],
                            protocol=pickle.HIGHEST_PROTOCOL,
                        )
                    if is_test[indices].any():
                        pickle.dump(
                            (indices[is_test[indices]], counts[is_test[indices]]),
                            test_file,
                            protocol=pickle.HIGHEST_PROTOCOL,
                        )
                    report(
                        f"streaming: counted {min(done * CHUNK_DOCUMENTS, len(labels)):,} of {len(labels):,} documents"
                    )
        finally:
            for handle in shard_files:
                handle.close()
        (spill / "cleaned").unlink()
        featurizer.fit_counts(per_label.sum(axis=0, dtype=np.float64).astype(np.int64), len(train_rows))
        ratios = None
        if config.nb_scaling and config.classifier in ONE_VS_REST:
            ratios = nb_ratios_from_counts(per_label[:, featurizer.columns_], config.nb_scaling)
        del per_label
        # sample weights and label masks over all training documents, as the in-memory fit has them
        weights = sample_weight
        if config.class_weight == "balanced":
            balance = balanced_weights(y_train, n_classes)
            weights = balance if weights is None else weights * balance
        masks = None
        if config.outlet_label_sets:
            masks = outlet_label_masks(y_train, n_classes, np.asarray(outlets)[train_rows])
        classifier.set_params(class_weight=None)  # balancing is in `weights`, counted over the whole corpus

        for number in range(len(plan.shards)):
            # each shard's counts become its features once, in the split's order (as the in-memory fit sees them)
            pieces = list(_pieces(spill / f"shard-{number}"))
            local = np.concatenate([piece[0] for piece in pieces])
            order = np.argsort(local, kind="stable")
            features = featurizer.weigh(sp.vstack([piece[1] for piece in pieces], format="csr")[order])
            del pieces
            with open(spill / f"shard-{number}", "wb") as handle:
                pickle.dump((local[order], features), handle, protocol=pickle.HIGHEST_PROTOCOL)
            del features

        def load_shard(number: int) -> tuple[np.ndarray, sp.csr_matrix]:
            """A shard's training rows and their features."""
            return next(_pieces(spill / f"shard-{number}"))

        fit_shards = list(range(plan.n_fit_shards))
        all_shards = list(range(len(plan.shards)))
        if config.classifier == "sgd" and len(plan.shards) > 1:
            fitting = "partial_fit epochs"
            fit_on = functools.partial(
                _sgd_epochs, classifier, load_shard, y_train, n_classes, weights, masks, ratios, config.seed, report
            )
        else:
            fitting = "averaged shard models"
            fit_on = functools.partial(
                _averaged, classifier, load_shard, y_train, n_classes, weights, masks, ratios, report, engine, fitted={}
            )
        held_decisions, held_labels = [], []
        if plan.calibrated:
            calibration = fit_on(fit_shards)
            for number in all_shards[plan.n_fit_shards :]:
                local, X = load_shard(number)
                held_decisions.append(np.asarray(X @ calibration[0].T) + calibration[1])
                held_labels.append(y_train[local])
        coef, intercept = fit_on(all_shards)
        classifier.set_params(class_weight=config.class_weight)
        classifier.classes_ = classes
        classifier.temperature_ = 1.0
        scale, bias = np.ones(n_classes), np.zeros(n_classes)
        if held_decisions:
            decision, truth = np.vstack(held_decisions), np.concatenate(held_labels)
            classifier.temperature_ = fit_temperature(decision, truth)
            if config.class_scaling:
                scale, bias = fit_class_scaling(decision / classifier.temperature_, truth)
        classifier.coef_ = coef * scale.astype(np.float32)[:, None]
        classifier.intercept_ = (intercept * scale + classifier.temperature_ * bias).astype(np.float32)
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
        return np.empty(0, dtype=np.int64), np.empty((0, n_classes)), info
    return np.concatenate(order), np.vstack(probas), info
