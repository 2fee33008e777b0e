"""Boilerplate learned from a corpus: first and last segments (lines or sentences) that many training
articles share, such as app notices, opinion disclaimers, credit lines and column introductions. They
tell the outlet rather than the topic, so the featurizer leaves them out of every article.

Learning is a count of edge segments per article (`count_edge_segments`, which also adds up over
shards), then the keys found in at least `min_docs` articles (`frequent_segments`).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

#: Segments are lines, or sentences ending in . ! ? ؟
_SEGMENT_RE = re.compile(r"\n|(?<=[.!?؟]) ")
#: How many segments at each end of an article are checked for boilerplate.
EDGE_SEGMENTS = 2
#: Shorter segments ("الخرطوم:") are too common to call boilerplate.
MIN_BOILERPLATE_CHARS = 12


def segment_key(segment: str) -> int:
    """A stable 64-bit key of a segment (Python's `hash` changes from run to run)."""
    return int.from_bytes(hashlib.blake2b(segment.encode(), digest_size=8).digest(), "little")


def edge_segments(text: str, k: int = EDGE_SEGMENTS) -> list[str]:
    """The first and last `k` segments of a cleaned article, where outlets put their notices."""
    segments = [segment for segment in _SEGMENT_RE.split(text) if segment]
    return segments if len(segments) <= 2 * k else segments[:k] + segments[-k:]


def count_edge_segments(texts: Iterable[str]) -> Counter:
    """In how many of `texts` each edge segment key occurs (counts of shards add up)."""
    return Counter(
        key
        for text in texts
        for key in {segment_key(s) for s in edge_segments(text) if len(s) >= MIN_BOILERPLATE_CHARS}
    )


def frequent_segments(counts: Counter, min_docs: int) -> np.ndarray:
    """The sorted keys counted in at least `min_docs` articles."""
    return np.array(sorted(key for key, count in counts.items() if count >= min_docs), dtype=np.uint64)


def learn_edge_boilerplate(texts: Iterable[str], min_docs: int) -> np.ndarray:
    """Keys of edge segments found in at least `min_docs` of `texts`."""
    return frequent_segments(count_edge_segments(texts), min_docs)


#: The separators `_SEGMENT_RE` finds, as plain strings (the segment break is their last character).
_SEPARATORS = ("\n", ". ", "! ", "? ", "؟ ")


def _has_edge_boilerplate(text: str, boilerplate: frozenset[int]) -> bool:
    """Whether the first or last segment is boilerplate, found with plain string search (most
    articles carry none, and this is on the path of every article labeled)."""
    head_end, tail_start = len(text), -1  # the first break, the last break (each search stops at the best so far)
    for sep in _SEPARATORS:
        first = text.find(sep, 0, head_end + len(sep) - 1)
        if first >= 0:
            head_end = min(head_end, first + len(sep) - 1)
        last = text.rfind(sep, max(tail_start - len(sep) + 2, 0))
        if last >= 0:
            tail_start = max(tail_start, last + len(sep) - 1)
    head = text[:head_end]
    tail = text[tail_start + 1 :] if tail_start >= 0 else text
    if not head or not tail:
        return True  # empty edge segments are skipped when peeling: let it decide
    return segment_key(head) in boilerplate or (tail != head and segment_key(tail) in boilerplate)


def strip_edge_boilerplate(text: str, boilerplate: frozenset[int]) -> str:
    """Peel boilerplate segments off both ends of a cleaned article."""
    if not boilerplate or not _has_edge_boilerplate(text, boilerplate):
        return text
    return peel_edge_boilerplate(text, boilerplate)


def peel_edge_boilerplate(text: str, boilerplate: frozenset[int]) -> str:
    """The peeling itself, segment by segment from each end (what `strip_edge_boilerplate` does once
    its quick look at the edges finds something)."""
    segments = [segment for segment in _SEGMENT_RE.split(text) if segment]
    start, end = 0, len(segments)
    while start < end and start <= EDGE_SEGMENTS and segment_key(segments[start]) in boilerplate:
        start += 1
    while end > start and len(segments) - end <= EDGE_SEGMENTS and segment_key(segments[end - 1]) in boilerplate:
        end -= 1
    return text if (start, end) == (0, len(segments)) else "\n".join(segments[start:end])
