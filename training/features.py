r"""TF-IDF features for cleaned Arabic text, as a scikit-learn transformer.

Terms (word n-grams, lead n-grams of an article's first words, optionally char n-grams) are hashed
into a fixed number of buckets instead of being kept in a vocabulary: hashing needs no shared state,
so chunks of a corpus are featurized on every core at once, and a saved model stores a few arrays
instead of millions of strings. `fit`
keeps the buckets that occur in at least `min_df` documents (and at most `max_features` of them) and
learns their inverse document frequencies.

Counting never builds a term string: a chunk of articles becomes one array of code points, words
(runs of two or more letters or digits, as the regex `\b\w\w+\b` finds them) are located and hashed
with prefix sums of a polynomial hash, and n-gram hashes are combined from word hashes, all in
NumPy. `analyze` gives the same terms as strings, for explanations.
"""

from __future__ import annotations

import functools
import multiprocessing
import re
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction import FeatureHasher
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from .clean import TextCleaner, learn_edge_boilerplate, strip_edge_boilerplate
from .errors import QismError

#: Words of two or more letters or digits; single letters carry little topic.
TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")
#: Documents per parallel task at most: large enough to hide the cost of sending work to a process.
CHUNK_SIZE = 2000
#: Fewer texts than this are featurized in the calling process: starting workers would cost more.
MIN_PARALLEL_TEXTS = 500
#: An article longer than this is featurized from its first million characters, so time and memory
#: stay bounded whatever a file holds (a news article is a few thousand characters).
MAX_ARTICLE_CHARS = 1_000_000


# --- parallel chunks ---------------------------------------------------------------------------

#: On Linux, workers are forked: they inherit the featurizer and the texts, so a task is two numbers
#: and a worker starts in milliseconds without importing anything. Elsewhere joblib's processes are
#: used, which must be sent both and import the package first.
FORK_WORKERS = sys.platform == "linux"
#: What forked workers inherit: (work, texts), set only while one pool runs.
_INHERITED: tuple[Callable, Sequence[str]] | None = None
_INHERITED_LOCK = threading.Lock()


def _work_on_range(bounds: tuple[int, int]):
    work, texts = _INHERITED
    return work(texts[bounds[0] : bounds[1]])


def map_ranges(work: Callable, texts: Sequence[str], bounds: list[tuple[int, int]], n_jobs: int) -> list:
    """`work(texts[start:end])` for each range, in order, on `n_jobs` processes."""
    if FORK_WORKERS and not multiprocessing.current_process().daemon and _INHERITED_LOCK.acquire(blocking=False):
        global _INHERITED
        try:
            _INHERITED = (work, texts)
            with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                return list(pool.map(_work_on_range, bounds))
        finally:
            _INHERITED = None
            _INHERITED_LOCK.release()
    return Parallel(n_jobs=n_jobs)(delayed(work)(texts[start:end]) for start, end in bounds)


# --- hashing ------------------------------------------------------------------------------------

_UINT32 = np.uint64(0xFFFFFFFF)
_PRIME = 0x100000001B3
#: Whether the regex `\w` matches each code point of the Basic Multilingual Plane.
_BMP_WORD_CHARS = np.fromiter((chr(c).isalnum() or c == 0x5F for c in range(0x10000)), dtype=bool, count=0x10000)


def is_word_char(points: np.ndarray) -> np.ndarray:
    r"""`\w` for each code point; the rare ones beyond the BMP (emoji, old scripts) one by one."""
    if not len(points) or points.max() <= 0xFFFF:
        return _BMP_WORD_CHARS[points]
    beyond = points > 0xFFFF
    result = _BMP_WORD_CHARS[np.where(beyond, 0, points)]
    result[beyond] = [chr(point).isalnum() for point in points[beyond]]
    return result


def _mix(h: np.ndarray) -> np.ndarray:
    """Spread a hash over 32 bits (the finalizer of MurmurHash3)."""
    h = h & _UINT32
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _UINT32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _UINT32
    return h ^ (h >> np.uint64(16))


def _combine(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The hash of a word sequence extended by one word, from the two 32-bit hashes."""
    return _mix(left * np.uint64(0x9E3779B1) + right + np.uint64(0x27D4EB2F))


def _powers(n: int) -> np.ndarray:
    """P**1 .. P**n modulo 2**64."""
    with np.errstate(over="ignore"):
        return np.cumprod(np.full(n, _PRIME, dtype=np.uint64))


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    r"""(document, hash) of every word in `texts`, in order: a word is a run of two or more `\w`
    characters; its hash, the sum of its code points times P**1, P**2, ..., depends only on it."""
    joined = "\n".join(texts)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    edges = np.diff(is_word_char(points).view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long_enough = ends - starts >= 2
    starts, lengths = starts[long_enough], (ends - starts)[long_enough]
    if not len(starts):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
    # every character of every word, with its offset inside the word
    first_char = np.cumsum(lengths) - lengths
    offsets = np.arange(lengths.sum()) - np.repeat(first_char, lengths)
    chars = points[np.repeat(starts, lengths) + offsets].astype(np.uint64)
    with np.errstate(over="ignore"):  # all arithmetic is modulo 2**64
        hashes = np.add.reduceat(chars * _powers(int(lengths.max()))[offsets], first_char)
    doc_starts = np.cumsum([0] + [len(text) + 1 for text in texts[:-1]])
    return np.searchsorted(doc_starts, starts, side="right") - 1, _mix(hashes ^ (hashes >> np.uint64(32)))


#: Mixed into the hash of a lead word, so "in the lead" and "anywhere" are different terms.
_LEAD_SALT = np.uint64(0x5BD1E995)


def lead_hashes(docs: np.ndarray, hashes: np.ndarray, n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """(document, hash) of the first `n_words` words of each document, as lead words (`docs` is
    sorted, as `word_hashes` gives it)."""
    position = np.arange(len(docs)) - np.searchsorted(docs, docs)
    lead = position < n_words
    return docs[lead], _mix(hashes[lead] ^ _LEAD_SALT)


def ngram_hashes(docs: np.ndarray, hashes: np.ndarray, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """(document, hash) of every word n-gram, low <= n <= high, that does not cross a document."""
    gram_docs, grams = [], []
    gram = hashes
    for n in range(1, high + 1):
        if n > 1:
            gram = _combine(gram[:-1], hashes[n - 1 :])
        if n >= low:
            same_doc = docs[: len(gram)] == docs[n - 1 :]
            gram_docs.append(docs[: len(gram)][same_doc])
            grams.append(gram[same_doc])
    return np.concatenate(gram_docs), np.concatenate(grams)


def _word_ngrams(tokens: list[str], low: int, high: int) -> list[str]:
    return [" ".join(gram) for n in range(low, high + 1) for gram in zip(*(tokens[i:] for i in range(n)))]


class TfidfFeaturizer(TransformerMixin, BaseEstimator):
    """Raw articles in, L2-normalized TF-IDF rows out (cleaning included).

    Parameters follow `TfidfVectorizer` where they mean the same thing. `cleaner` is applied to each
    article first (None: use the text as given). `n_buckets` is the hashing space; `n_jobs` the
    number of processes that clean and hash (-1: all cores). With `lead_words`, the word n-grams of
    an article's first that many words are also counted as lead terms of their own: a news story
    says what it is about in its title and first sentence, and the model can weigh those words apart.
    """

    def __init__(
        self,
        cleaner: TextCleaner | None = None,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = None,
        sublinear_tf: bool = True,
        min_df: int = 1,
        max_df: float = 1.0,
        max_features: int | None = None,
        n_buckets: int = 2**20,
        dtype: str = "float32",
        boilerplate_min_docs: int | None = None,
        lead_words: int = 50,
        n_jobs: int | None = None,
    ):
        self.cleaner = cleaner
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.n_buckets = n_buckets
        self.dtype = dtype
        self.boilerplate_min_docs = boilerplate_min_docs
        self.lead_words = lead_words
        self.n_jobs = n_jobs

    def __getstate__(self):
        # lookup tables are rebuilt on demand; not shipping them keeps parallel tasks small
        return {key: value for key, value in super().__getstate__().items() if key not in ("_lookup", "_boilerplate_set")}

    # --- terms --------------------------------------------------------------------------------

    def clean(self, text: str) -> str:
        """The article as the model reads it: its first `MAX_ARTICLE_CHARS`, cleaned."""
        text = text[:MAX_ARTICLE_CHARS]
        return self.cleaner(text) if self.cleaner is not None else text

    def _boilerplate(self) -> frozenset[int]:
        learned = getattr(self, "_boilerplate_set", None)
        if learned is None:
            learned = frozenset(int(key) for key in getattr(self, "boilerplate_", ()))
            self._boilerplate_set = learned
        return learned

    def analyze(self, text: str, cleaned: bool = False) -> list[str]:
        """The terms of one article: word n-grams, lead n-grams marked with a leading `^`, then char
        n-grams marked with a leading `#`. Learned boilerplate at the article's edges is left out."""
        text = self._prepared(text, cleaned)
        terms: list[str] = []
        if self.word_ngrams:
            tokens = TOKEN_RE.findall(text)
            terms.extend(_word_ngrams(tokens, *self.word_ngrams))
            if self.lead_words:
                terms.extend("^" + term for term in _word_ngrams(tokens[: self.lead_words], *self.word_ngrams))
        if self.char_ngrams:
            terms.extend(self._char_terms(text))
        return terms

    def _char_terms(self, text: str) -> list[str]:
        """Char n-grams of each word padded with spaces, marked with a leading `#`."""
        low, high = self.char_ngrams
        terms = []
        for word in text.split():
            padded = f" {word} "
            for n in range(low, high + 1):
                terms.extend("#" + padded[i : i + n] for i in range(len(padded) - n + 1))
        return terms

    def _hasher(self) -> FeatureHasher:
        return FeatureHasher(self.n_buckets, input_type="string", alternate_sign=False, dtype=self.dtype)

    def _prepared(self, text: str, cleaned: bool) -> str:
        return strip_edge_boilerplate(text if cleaned else self.clean(text), self._boilerplate())

    def _count_chunk(self, texts: Sequence[str], cleaned: bool = False) -> sp.csr_matrix:
        texts = [self._prepared(text, cleaned) for text in texts]
        shape = (len(texts), self.n_buckets)
        counts = sp.csr_matrix(shape, dtype=self.dtype)
        if self.word_ngrams and texts:
            words = word_hashes(texts)
            docs, grams = ngram_hashes(*words, *self.word_ngrams)
            if self.lead_words:
                lead_docs, lead_grams = ngram_hashes(*lead_hashes(*words, self.lead_words), *self.word_ngrams)
                docs, grams = np.concatenate([docs, lead_docs]), np.concatenate([grams, lead_grams])
            ones = np.ones(len(docs), dtype=self.dtype)
            counts = sp.csr_matrix((ones, (docs, grams % np.uint64(self.n_buckets))), shape=shape)
        if self.char_ngrams:
            counts = counts + self._hasher().transform(self._char_terms(text) for text in texts)
        return counts.tocsr()

    def _clean_chunk(self, texts: Sequence[str]) -> list[str]:
        return [self.clean(text) for text in texts]

    def clean_all(self, texts: Sequence[str]) -> list[str]:
        """`clean` of each text, in parallel chunks when `n_jobs` allows."""
        return [text for part in self._map_chunks(self._clean_chunk, list(texts)) for text in part]

    def _map_chunks(self, work, texts: Sequence[str], **kwargs) -> list:
        """`work` on each chunk of texts, on `n_jobs` processes when there are enough texts: at most
        CHUNK_SIZE each, and at least four chunks per process, so no process waits on a last big one."""
        n_jobs = effective_n_jobs(self.n_jobs)
        if n_jobs == 1 or len(texts) < MIN_PARALLEL_TEXTS:
            return [work(texts[i : i + CHUNK_SIZE], **kwargs) for i in range(0, len(texts), CHUNK_SIZE)]
        size = min(CHUNK_SIZE, -(-len(texts) // (4 * n_jobs)))
        bounds = [(i, i + size) for i in range(0, len(texts), size)]
        return map_ranges(functools.partial(work, **kwargs), texts, bounds, n_jobs)

    def _stacked(self, work, texts: Sequence[str], n_columns: int, **kwargs) -> sp.csr_matrix:
        """The rows `work` makes of each chunk of texts, stacked in order."""
        parts = self._map_chunks(work, list(texts), **kwargs)
        return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n_columns), dtype=self.dtype)

    def count(self, texts: Sequence[str], cleaned: bool = False) -> sp.csr_matrix:
        """Term counts per hashed bucket, computed in parallel chunks when `n_jobs` allows."""
        return self._stacked(self._count_chunk, texts, self.n_buckets, cleaned=cleaned)

    # --- fit / transform ----------------------------------------------------------------------

    def fit(self, texts, y=None):
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts, y=None):
        texts = list(texts)
        self.boilerplate_ = np.empty(0, dtype=np.uint64)
        self._boilerplate_set = None
        if self.boilerplate_min_docs:
            # clean once, learn the boilerplate from the cleaned texts, then count without it
            texts = self.clean_all(texts)
            self.boilerplate_ = learn_edge_boilerplate(texts, self.boilerplate_min_docs)
            counts = self.count(texts, cleaned=True)
        else:
            counts = self.count(texts)
        self._fit(counts)
        return self.weigh(counts)

    def transform(self, texts):
        check_is_fitted(self, "columns_")
        return self._stacked(self._transform_chunk, texts, len(self.columns_))

    def _transform_chunk(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.weigh(self._count_chunk(texts))

    def _fit(self, counts: sp.csr_matrix) -> None:
        self.fit_document_frequencies(np.bincount(counts.indices, minlength=self.n_buckets), counts.shape[0])

    def fit_document_frequencies(self, df: np.ndarray, n_docs: int) -> None:
        """Choose the kept buckets and their IDF from per-bucket document frequencies over `n_docs`
        documents: what `fit` does once counted, and what corpora counted in shards sum up to."""
        keep = (df >= self.min_df) & (df <= self.max_df * n_docs)
        columns = np.flatnonzero(keep)
        if self.max_features is not None and len(columns) > self.max_features:
            # most frequent first; ties broken by bucket number so the choice is reproducible
            order = np.lexsort((columns, -df[columns]))[: self.max_features]
            columns = np.sort(columns[order])
        if len(columns) == 0:
            raise QismError("no term occurs in enough documents; lower --min-df or add documents")
        self.columns_ = columns.astype(np.int32)
        self.idf_ = (np.log((1 + n_docs) / (1 + df[columns])) + 1).astype(self.dtype)
        self.n_features_out_ = len(columns)

    def _bucket_to_column(self) -> np.ndarray:
        lookup = getattr(self, "_lookup", None)
        if lookup is None or len(lookup) != self.n_buckets:
            lookup = np.full(self.n_buckets, -1, dtype=np.int32)
            lookup[self.columns_] = np.arange(len(self.columns_), dtype=np.int32)
            self._lookup = lookup
        return lookup

    def weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Keep the fitted buckets, then tf (sublinear if asked) x idf, L2-normalized per row."""
        counts = counts.tocsr()
        column = self._bucket_to_column()[counts.indices]
        kept = column >= 0
        indptr = np.concatenate(([0], np.cumsum(kept)))[counts.indptr]
        data = counts.data[kept].astype(self.dtype, copy=False)
        if self.sublinear_tf:
            data = np.log(data, out=data) + 1
        data *= self.idf_[column[kept]]
        weighted = sp.csr_matrix((data, column[kept], indptr), shape=(counts.shape[0], len(self.columns_)))
        return normalize(weighted, copy=False) if weighted.shape[0] else weighted

    # --- explanations -------------------------------------------------------------------------

    def term_bucket(self, term: str) -> int:
        """The hashing bucket of one term of `analyze`, as counting puts it."""
        if term.startswith("#"):
            return int(self._hasher().transform([[term]]).indices[0])
        _, hashes = word_hashes(term.removeprefix("^").split(" "))
        if term.startswith("^"):
            hashes = _mix(hashes ^ _LEAD_SALT)
        gram = hashes[:1]
        for following in hashes[1:]:
            gram = _combine(gram, following)
        return int(gram[0] % np.uint64(self.n_buckets))

    def term_columns(self, terms: Sequence[str]) -> np.ndarray:
        """The feature column of each term (-1 where its bucket was not kept)."""
        buckets = np.fromiter((self.term_bucket(term) for term in terms), dtype=np.int64, count=len(terms))
        return self._bucket_to_column()[buckets]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "columns_")
        return np.asarray([f"bucket{b}" for b in self.columns_], dtype=object)

