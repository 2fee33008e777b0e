"""Document-frequency pruning and TF-IDF weights over hashed term counts.

`select_columns` keeps the buckets found in enough documents (and at most `max_features` of them),
`inverse_document_frequencies` weighs them, and `tfidf` turns a chunk's counts into L2-normalized rows
over the kept columns. Document frequencies are sums over documents, so shards of a corpus add up.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from ..errors import QismError


def document_frequencies(counts: sp.csr_matrix, n_buckets: int) -> np.ndarray:
    """In how many documents (rows) each bucket occurs."""
    return np.bincount(counts.indices, minlength=n_buckets)


def select_columns(df: np.ndarray, n_docs: int, min_df: int, max_df: float, max_features: int | None) -> np.ndarray:
    """The buckets with `min_df` <= df <= `max_df` x `n_docs`, the `max_features` most frequent of
    them (ties by bucket number, so the choice is reproducible), sorted."""
    columns = np.flatnonzero((df >= min_df) & (df <= max_df * n_docs))
    if max_features is not None and len(columns) > max_features:
        order = np.lexsort((columns, -df[columns]))[:max_features]
        columns = np.sort(columns[order])
    if len(columns) == 0:
        raise QismError("no term occurs in enough documents; lower --min-df or add documents")
    return columns.astype(np.int32)


def inverse_document_frequencies(df: np.ndarray, n_docs: int, dtype) -> np.ndarray:
    """Smoothed idf, as scikit-learn's `TfidfTransformer(smooth_idf=True)` computes it."""
    return (np.log((1 + n_docs) / (1 + df)) + 1).astype(dtype)


def column_lookup(columns: np.ndarray, n_buckets: int) -> np.ndarray:
    """For each bucket, its column among the kept ones (-1 where it was not kept)."""
    lookup = np.full(n_buckets, -1, dtype=np.int32)
    lookup[columns] = np.arange(len(columns), dtype=np.int32)
    return lookup


def kept_columns(counts: sp.csr_matrix, lookup: np.ndarray, n_columns: int) -> sp.csr_matrix:
    """Counts per bucket as counts per kept column (the buckets not kept left out)."""
    counts = counts.tocsr()
    column = lookup[counts.indices]
    kept = column >= 0
    indptr = np.concatenate(([0], np.cumsum(kept)))[counts.indptr]
    return sp.csr_matrix((counts.data[kept], column[kept], indptr), shape=(counts.shape[0], n_columns))


def tfidf(counts: sp.csr_matrix, lookup: np.ndarray, idf: np.ndarray, sublinear_tf: bool, dtype) -> sp.csr_matrix:
    """Keep the looked-up buckets, then tf (1 + log tf if `sublinear_tf`) x idf, L2-normalized per row."""
    return weigh_columns(kept_columns(counts, lookup, len(idf)), idf, sublinear_tf, dtype)


def weigh_columns(counts: sp.csr_matrix, idf: np.ndarray, sublinear_tf: bool, dtype) -> sp.csr_matrix:
    """Counts per kept column to tf (1 + log tf if `sublinear_tf`) x idf, L2-normalized per row."""
    data = counts.data.astype(dtype)  # a copy: the logarithm is taken in place
    if sublinear_tf:
        data = np.log(data, out=data) + 1
    data *= idf[counts.indices]
    weighted = sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)
    return normalize(weighted, copy=False) if weighted.shape[0] else weighted
