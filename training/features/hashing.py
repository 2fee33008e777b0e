r"""Hashing kernels: words, lead words and word n-grams of a batch of articles as 32-bit hashes, in NumPy.

Counting never builds a term string: a batch of articles becomes one array of code points, words (runs
of two or more letters or digits, as the regex `\b\w\w+\b` finds them) are located and hashed with
prefix sums of a polynomial hash, and n-gram hashes are combined from word hashes. `term_buckets` hashes
term strings the same way, and `word_ngram_terms` gives the terms as strings, for explanations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction import FeatureHasher

try:  # the compiled twin of `word_ngram_counts_pure` (setup.py builds it where a compiler is)
    from .. import _native
except ImportError:
    _native = None

#: Words of two or more letters or digits; single letters carry little topic.
TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")

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


def word_ngram_terms(tokens: list[str], low: int, high: int) -> list[str]:
    """The word n-grams of `tokens` as strings, `low` <= n <= `high`."""
    return [" ".join(gram) for n in range(low, high + 1) for gram in zip(*(tokens[i:] for i in range(n)))]


def char_ngram_terms(text: str, low: int, high: int) -> list[str]:
    """Char n-grams of each word padded with spaces, marked with a leading `#`."""
    return [
        "#" + padded[i : i + n]
        for padded in (f" {word} " for word in text.split())
        for n in range(low, high + 1)
        for i in range(len(padded) - n + 1)
    ]


def _char_hasher(n_buckets: int, dtype) -> FeatureHasher:
    return FeatureHasher(n_buckets, input_type="string", alternate_sign=False, dtype=dtype)


def char_ngram_counts(texts: Sequence[str], ngrams: tuple[int, int], n_buckets: int, dtype) -> sp.csr_matrix:
    """Counts of the char n-grams of `texts` per hashed bucket."""
    return _char_hasher(n_buckets, dtype).transform(char_ngram_terms(text, *ngrams) for text in texts)


def term_buckets(terms: Sequence[str], n_buckets: int) -> np.ndarray:
    """The bucket counting puts each term of `TfidfFeaturizer.analyze` in: a word n-gram, a lead
    n-gram (`^` first) or a char n-gram (`#` first). The words of all the terms are hashed at once,
    as counting hashes an article's, and their n-grams combined one position at a time: an
    explanation looks up thousands of terms per article."""
    buckets = np.zeros(len(terms), dtype=np.int64)
    chars = [i for i, term in enumerate(terms) if term.startswith("#")]
    if chars:
        buckets[chars] = _char_hasher(n_buckets, np.float32).transform([[terms[i]] for i in chars]).indices
    words = [i for i, term in enumerate(terms) if not term.startswith("#")]
    grams = [terms[i].removeprefix("^").split(" ") for i in words]
    if not grams:
        return buckets
    sizes = np.fromiter((len(gram) for gram in grams), dtype=np.int64, count=len(grams))
    _, hashes = word_hashes([word for gram in grams for word in gram])
    if len(hashes) != sizes.sum():  # not every word is one token, as analyze gives them
        raise ValueError("term_buckets takes the terms of TfidfFeaturizer.analyze")
    lead = np.repeat(np.fromiter((terms[i].startswith("^") for i in words), dtype=bool, count=len(words)), sizes)
    hashes = np.where(lead, _mix(hashes ^ _LEAD_SALT), hashes)
    first = np.cumsum(sizes) - sizes
    gram = hashes[first]
    for position in range(1, int(sizes.max())):
        longer = np.flatnonzero(sizes > position)
        gram[longer] = _combine(gram[longer], hashes[first[longer] + position])
    buckets[words] = (gram % np.uint64(n_buckets)).astype(np.int64)
    return buckets


def article_term_hashes(
    texts: Sequence[str], word_ngrams: tuple[int, int], lead_words: int
) -> tuple[np.ndarray, np.ndarray]:
    """(document, hash) of every word n-gram of `texts`, then of every lead n-gram (those of each
    article's first `lead_words` words, hashed apart) when `lead_words` > 0."""
    words = word_hashes(texts)
    docs, grams = ngram_hashes(*words, *word_ngrams)
    if lead_words:
        lead_docs, lead_grams = ngram_hashes(*lead_hashes(*words, lead_words), *word_ngrams)
        docs, grams = np.concatenate([docs, lead_docs]), np.concatenate([grams, lead_grams])
    return docs, grams


def term_counts(
    texts: Sequence[str],
    word_ngrams: tuple[int, int] | None,
    lead_words: int,
    char_ngrams: tuple[int, int] | None,
    n_buckets: int,
    dtype,
) -> sp.csr_matrix:
    """Counts of the terms of cleaned `texts` per hashed bucket: word n-grams, lead n-grams, char n-grams."""
    shape = (len(texts), n_buckets)
    counts = sp.csr_matrix(shape, dtype=dtype)
    if word_ngrams and texts:
        counts = word_ngram_counts(texts, word_ngrams, lead_words, n_buckets, dtype)
    if char_ngrams:
        counts = counts + char_ngram_counts(texts, char_ngrams, n_buckets, dtype)
    return counts.tocsr()


def word_ngram_counts_pure(texts: Sequence[str], word_ngrams: tuple[int, int], lead_words: int, n_buckets: int, dtype):
    """Counts of the word and lead n-grams of `texts` per bucket, in NumPy (the reference the compiled
    loop is tested against, and the path where it was not built)."""
    docs, grams = article_term_hashes(texts, word_ngrams, lead_words)
    ones = np.ones(len(docs), dtype=dtype)
    return sp.csr_matrix((ones, (docs, grams % np.uint64(n_buckets))), shape=(len(texts), n_buckets)).tocsr()


def word_ngram_counts(texts: Sequence[str], word_ngrams: tuple[int, int], lead_words: int, n_buckets: int, dtype):
    """Counts of the word and lead n-grams of `texts` per bucket: one compiled pass over each text
    when the extension is built (the same matrix as `word_ngram_counts_pure`, rows sorted)."""
    if _native is None:
        return word_ngram_counts_pure(texts, word_ngrams, lead_words, n_buckets, dtype)
    return _native_counts(_native.word_ngram_counts(list(texts), *word_ngrams, lead_words, n_buckets), n_buckets, dtype)


def compiled() -> bool:
    """Whether the compiled counting (the extension `qism._native`) is there."""
    return _native is not None


def native_column_counts(
    texts: Sequence[str], word_ngrams: tuple[int, int], lead_words: int, lookup: np.ndarray, n_columns: int, dtype
) -> sp.csr_matrix:
    """Counts of the word and lead n-grams of `texts` per kept column (`lookup`: each bucket's column,
    -1 where it was not kept, increasing with the bucket), counted straight into the columns by the
    compiled pass (see `compiled`): what `weights.kept_columns` makes of `word_ngram_counts`."""
    lookup = np.ascontiguousarray(lookup, dtype=np.int32)
    rows = _native.word_ngram_counts(list(texts), *word_ngrams, lead_words, len(lookup), lookup)
    return _native_counts(rows, n_columns, dtype)


def _native_counts(rows: tuple[bytearray, bytearray, bytearray], n_columns: int, dtype) -> sp.csr_matrix:
    indptr, indices, counts = rows
    data = np.frombuffer(counts, dtype=np.int32).astype(dtype)
    columns, starts = np.frombuffer(indices, dtype=np.int32), np.frombuffer(indptr, dtype=np.int64)
    return sp.csr_matrix((data, columns, starts), shape=(len(starts) - 1, n_columns))
