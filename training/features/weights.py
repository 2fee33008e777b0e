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


def tfidf(counts: sp.csr_matrix, lookup: np.ndarray, idf: np.ndarray, sublinear_tf: bool, dtype) -> sp.csr_matrix:
    """Keep the looked-up buckets, then tf (1 + log tf if `sublinear_tf`) x idf, L2-normalized per row."""
    counts = counts.tocsr()
    column = lookup[counts.indices]
    kept = column >= 0
    indptr = np.concatenate(([0], np.cumsum(kept)))[counts.indptr]
    data = counts.data[kept].astype(dtype, copy=False)
    if sublinear_tf:
        data = np.log(data, out=data) + 1
    data *= idf[column[kept]]
    weighted = sp.csr_matrix((data, column[kept], indptr), shape=(counts.shape[0], len(idf)))
    return normalize(weighted, copy=False) if weighted.shape[0] else weighted
