"""TF-IDF features for cleaned Arabic text, as a scikit-learn transformer.

Terms (word n-grams, optionally char n-grams) are hashed into a fixed number of buckets instead of
being kept in a vocabulary: hashing needs no shared state, so chunks of a corpus are featurized on
every core at once, and a saved model stores a few arrays instead of millions of strings. `fit`
keeps the buckets that occur in at least `min_df` documents (and at most `max_features` of them) and
learns their inverse document frequencies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
#: Documents per parallel task: large enough to hide the cost of sending work to a process.
CHUNK_SIZE = 2000
#: An article longer than this is featurized from its first million characters, so time and memory
#: stay bounded whatever a file holds (a news article is a few thousand characters).
MAX_ARTICLE_CHARS = 1_000_000


class TfidfFeaturizer(TransformerMixin, BaseEstimator):
    """Raw articles in, L2-normalized TF-IDF rows out (cleaning included).

    Parameters follow `TfidfVectorizer` where they mean the same thing. `cleaner` is applied to each
    article first (None: use the text as given). `n_buckets` is the hashing space; `n_jobs` the
    number of processes that clean and hash (-1: all cores).
    """

    def __init__(
        self,
        cleaner: TextCleaner | None = None,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = None,
        token_pattern: str = TOKEN_PATTERN,
        sublinear_tf: bool = True,
        min_df: int = 2,
        max_df: float = 1.0,
        max_features: int | None = None,
        n_buckets: int = 2**22,
        dtype: str = "float32",
        boilerplate_min_docs: int | None = None,
        n_jobs: int | None = None,
    ):
        self.cleaner = cleaner
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.token_pattern = token_pattern
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.n_buckets = n_buckets
        self.dtype = dtype
        self.boilerplate_min_docs = boilerplate_min_docs
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
        """The terms of one article: word n-grams, then char n-grams marked with a leading `#`.
        Learned boilerplate at the article's edges is left out."""
        if not cleaned:
            text = self.clean(text)
        text = strip_edge_boilerplate(text, self._boilerplate())
        terms: list[str] = []
        if self.word_ngrams:
            tokens = re.findall(self.token_pattern, text)
            low, high = self.word_ngrams
            for n in range(low, high + 1):
                if n == 1:
                    terms.extend(tokens)
                else:
                    terms.extend(map(" ".join, zip(*(tokens[i:] for i in range(n)))))
        if self.char_ngrams:
            low, high = self.char_ngrams
            for word in text.split():
                padded = f" {word} "
                for n in range(low, high + 1):
                    terms.extend("#" + padded[i : i + n] for i in range(len(padded) - n + 1))
        return terms

    def _hasher(self) -> FeatureHasher:
        return FeatureHasher(self.n_buckets, input_type="string", alternate_sign=False, dtype=self.dtype)

    def _count_chunk(self, texts: Sequence[str], cleaned: bool = False) -> sp.csr_matrix:
        return self._hasher().transform(self.analyze(text, cleaned) for text in texts)

    def _clean_chunk(self, texts: Sequence[str]) -> list[str]:
        return [self.clean(text) for text in texts]

    def _map_chunks(self, work, texts: Sequence[str], **kwargs) -> list:
        """`work` on each chunk of texts, on `n_jobs` processes when there is more than one chunk."""
        chunks = [texts[i : i + CHUNK_SIZE] for i in range(0, len(texts), CHUNK_SIZE)]
        if len(chunks) > 1 and effective_n_jobs(self.n_jobs) > 1:
            return Parallel(n_jobs=self.n_jobs)(delayed(work)(chunk, **kwargs) for chunk in chunks)
        return [work(chunk, **kwargs) for chunk in chunks]

    def count(self, texts: Sequence[str], cleaned: bool = False) -> sp.csr_matrix:
        """Term counts per hashed bucket, computed in parallel chunks when `n_jobs` allows."""
        parts = self._map_chunks(self._count_chunk, list(texts), cleaned=cleaned)
        if not parts:
            return sp.csr_matrix((0, self.n_buckets), dtype=self.dtype)
        return sp.vstack(parts, format="csr")

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
            texts = [text for part in self._map_chunks(self._clean_chunk, texts) for text in part]
            self.boilerplate_ = learn_edge_boilerplate(texts, self.boilerplate_min_docs)
            counts = self.count(texts, cleaned=True)
        else:
            counts = self.count(texts)
        self._fit(counts)
        return self._weigh(counts)

    def transform(self, texts):
        check_is_fitted(self, "columns_")
        return self._weigh(self.count(texts))

    def _fit(self, counts: sp.csr_matrix) -> None:
        n_docs = counts.shape[0]
        df = np.bincount(counts.indices, minlength=self.n_buckets)
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

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
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
        return normalize(weighted, copy=False)

    # --- explanations -------------------------------------------------------------------------

    def term_columns(self, terms: Sequence[str]) -> np.ndarray:
        """The feature column of each term (-1 where its bucket was not kept)."""
        if not terms:
            return np.empty(0, dtype=np.int32)
        hashed = self._hasher().transform([term] for term in terms).tocsr()
        return self._bucket_to_column()[hashed.indices]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "columns_")
        return np.asarray([f"bucket{b}" for b in self.columns_], dtype=object)

