"""TF-IDF features for Arabic news, as a scikit-learn transformer over parts with one job each.

Terms (word n-grams, lead n-grams of an article's first words, optionally char n-grams) are hashed
into a fixed number of buckets instead of being kept in a vocabulary (`hashing`): hashing needs no
shared state, so chunks of a corpus are featurized on every core at once (`pool`), and a saved model
stores a few arrays instead of millions of strings. `fit` learns the corpus's edge boilerplate
(`boilerplate`), keeps the buckets found in at least `min_df` documents (at most `max_features` of
them) and learns their inverse document frequencies (`weights`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..clean import TextCleaner, clean_text
from ..config import DEFAULT, TrainConfig
from . import boilerplate, hashing, pool, weights

#: An article longer than this is featurized from its first million characters, so time and memory
#: stay bounded whatever a file holds (a news article is a few thousand characters).
MAX_ARTICLE_CHARS = 1_000_000


class TfidfFeaturizer(TransformerMixin, BaseEstimator):
    """Raw articles in, L2-normalized TF-IDF rows out (cleaning included); defaults are `qism train`'s.

    Parameters follow `TfidfVectorizer` where they mean the same. `cleaner`: None cleans with the
    default `TextCleaner`, "passthrough" not at all. `lead_words`: the n-grams of an article's first
    words (a news story's title and lead say what it is about) also count as lead terms of their own.
    `boilerplate_min_docs`: edge segments found in that many training articles are left out (0: kept).
    """

    def __init__(
        self,
        cleaner: TextCleaner | str | None = None,
        word_ngrams: tuple[int, int] = DEFAULT.word_ngrams,
        char_ngrams: tuple[int, int] | None = DEFAULT.char_ngrams,
        sublinear_tf: bool = DEFAULT.sublinear_tf,
        min_df: int = DEFAULT.min_df,
        max_df: float = DEFAULT.max_df,
        max_features: int | None = DEFAULT.max_features,
        n_buckets: int = DEFAULT.n_buckets,
        dtype: str = "float32",
        boilerplate_min_docs: int = DEFAULT.boilerplate_min_docs,
        lead_words: int = DEFAULT.lead_words,
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

    def __getstate__(self):  # derived tables are rebuilt on demand; parallel tasks stay small
        return {
            key: value for key, value in super().__getstate__().items() if key not in ("_lookup", "_boilerplate_set")
        }

    def clean(self, text: str) -> str:
        """The article as the model reads it: its first `MAX_ARTICLE_CHARS`, cleaned."""
        text = text[:MAX_ARTICLE_CHARS]
        if self.cleaner == "passthrough":
            return text
        return clean_text(text) if self.cleaner is None else self.cleaner(text)

    def _prepared(self, text: str, cleaned: bool) -> str:
        """The cleaned article without its learned edge boilerplate."""
        if getattr(self, "_boilerplate_set", None) is None:
            self._boilerplate_set = frozenset(int(key) for key in getattr(self, "boilerplate_", ()))
        return boilerplate.strip_edge_boilerplate(text if cleaned else self.clean(text), self._boilerplate_set)

    def analyze(self, text: str, cleaned: bool = False) -> list[str]:
        """The terms of one article: word n-grams, lead n-grams marked with a leading `^`, then char
        n-grams marked with a leading `#`. Learned boilerplate at the article's edges is left out."""
        text = self._prepared(text, cleaned)
        terms: list[str] = []
        if self.word_ngrams:
            tokens = hashing.TOKEN_RE.findall(text)
            terms.extend(hashing.word_ngram_terms(tokens, *self.word_ngrams))
            if self.lead_words:
                terms.extend(
                    "^" + term for term in hashing.word_ngram_terms(tokens[: self.lead_words], *self.word_ngrams)
                )
        if self.char_ngrams:
            terms.extend(hashing.char_ngram_terms(text, *self.char_ngrams))
        return terms

    def term_columns(self, terms: Sequence[str]) -> np.ndarray:
        """The feature column of each term of `analyze` (-1 where its bucket was not kept)."""
        return self._lookup_table()[hashing.term_buckets(terms, self.n_buckets)]

    def _count_chunk(self, texts: Sequence[str], cleaned: bool = False) -> sp.csr_matrix:
        return hashing.term_counts(
            [self._prepared(text, cleaned) for text in texts],
            self.word_ngrams,
            self.lead_words,
            self.char_ngrams,
            self.n_buckets,
            self.dtype,
        )

    def _clean_chunk(self, texts: Sequence[str]) -> list[str]:
        return [self.clean(text) for text in texts]

    def count(self, texts: Sequence[str], cleaned: bool = False) -> sp.csr_matrix:
        """Term counts per hashed bucket, computed in parallel chunks when `n_jobs` allows."""
        return pool.stack_chunks(
            functools.partial(self._count_chunk, cleaned=cleaned), texts, self.n_jobs, self.n_buckets, self.dtype
        )

    def fit(self, texts, y=None):
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts, y=None):
        texts = list(texts)
        self.boilerplate_ = np.empty(0, dtype=np.uint64)
        self._boilerplate_set = self._lookup = None  # a refit starts from nothing
        if self.boilerplate_min_docs:
            # clean once, learn the boilerplate from the cleaned texts, then count without it
            texts = clean_all(self, texts)
            self.boilerplate_ = boilerplate.learn_edge_boilerplate(texts, self.boilerplate_min_docs)
            counts = self.count(texts, cleaned=True)
        else:
            counts = self.count(texts)
        self.fit_counts(weights.document_frequencies(counts, self.n_buckets), counts.shape[0])
        return self.weigh(counts)

    def fit_counts(self, df: np.ndarray, n_docs: int) -> TfidfFeaturizer:
        """Keep buckets and learn idf from document frequencies (also summed over shards of a corpus)."""
        self.columns_ = weights.select_columns(df, n_docs, self.min_df, self.max_df, self.max_features)
        self.idf_ = weights.inverse_document_frequencies(df[self.columns_], n_docs, self.dtype)
        self.n_features_out_ = len(self.columns_)
        self._lookup = None
        return self

    def transform(self, texts):
        check_is_fitted(self, "columns_")
        return pool.stack_chunks(self._transform_chunk, texts, self.n_jobs, len(self.columns_), self.dtype)

    def _transform_chunk(self, texts: Sequence[str]) -> sp.csr_matrix:
        if self.word_ngrams and not self.char_ngrams and hashing.compiled():  # straight into the kept columns
            counts = hashing.native_column_counts(
                [self._prepared(text, False) for text in texts],
                self.word_ngrams,
                self.lead_words,
                self._lookup_table(),
                len(self.idf_),
                self.dtype,
            )
            return weights.weigh_columns(counts, self.idf_, self.sublinear_tf, self.dtype)
        return self.weigh(self._count_chunk(texts))

    def _lookup_table(self) -> np.ndarray:
        if getattr(self, "_lookup", None) is None:
            self._lookup = weights.column_lookup(self.columns_, self.n_buckets)
        return self._lookup

    def weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:  # counts as `count` makes them, here or elsewhere
        return weights.tfidf(counts, self._lookup_table(), self.idf_, self.sublinear_tf, self.dtype)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "columns_")
        return np.asarray([f"bucket{b}" for b in self.columns_], dtype=object)


def clean_all(featurizer: TfidfFeaturizer, texts: Sequence[str]) -> list[str]:
    """The featurizer's `clean` of each text, in parallel chunks when its `n_jobs` allows."""
    return [text for part in pool.map_chunks(featurizer._clean_chunk, list(texts), featurizer.n_jobs) for text in part]


def featurizer_for(config: TrainConfig, n_jobs: int | None = None) -> TfidfFeaturizer:
    """The featurizer a training configuration asks for."""
    return TfidfFeaturizer(
        cleaner=TextCleaner(**config.cleaning),
        word_ngrams=config.word_ngrams,
        char_ngrams=config.char_ngrams,
        sublinear_tf=config.sublinear_tf,
        min_df=config.min_df,
        max_df=config.max_df,
        max_features=config.max_features,
        n_buckets=config.n_buckets,
        boilerplate_min_docs=config.boilerplate_min_docs,
        lead_words=config.lead_words,
        n_jobs=n_jobs,
    )
