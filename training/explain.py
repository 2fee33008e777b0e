"""Why a model chose a label: the terms of an article that pushed it most towards that label.

A linear model's score for a label is a sum over the article's features of tf-idf value x weight, so
each term's share is exact, not an approximation. Hashing keeps no term strings; they are recovered by
analyzing the article again (cleaned and normalized, as the model saw it) and hashing its terms. Where
several terms share a feature, the most specific one is shown: a word n-gram before a char n-gram, the
longer before the shorter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .errors import QismError
from .features import TfidfFeaturizer


def _explainable_steps(pipeline):
    """(text steps, featurizer, classifier): a pipeline that ends in a TfidfFeaturizer and a linear classifier."""
    *text_steps, featurizer, classifier = [step for _, step in pipeline.steps]
    if not isinstance(featurizer, TfidfFeaturizer) or not hasattr(classifier, "coef_"):
        raise QismError(
            "this model cannot explain its labels: it does not end in TF-IDF features and a linear classifier"
        )
    return text_steps, featurizer, classifier


def _term_of_column(featurizer: TfidfFeaturizer, text: str) -> dict[int, str]:
    """The most specific term of `text` behind each feature column it has."""
    terms = sorted(set(featurizer.analyze(text)), key=lambda term: (not term.startswith("#"), len(term), term))
    # sorted from least to most specific, so the most specific term of a column is written last
    return {int(column): term for term, column in zip(terms, featurizer.term_columns(terms)) if column >= 0}


def _top_terms(row: sp.csr_matrix, weights: np.ndarray, terms: dict[int, str], n: int) -> list[dict]:
    """The `n` columns of `row` with the largest positive tf-idf x weight, as terms."""
    contributions = row.data * weights[row.indices]
    best = [i for i in np.argsort(-contributions, kind="stable")[:n] if contributions[i] > 0]
    return [{"term": terms[int(row.indices[i])], "weight": round(float(contributions[i]), 4)} for i in best]


def explain(pipeline, texts: Sequence[str], n: int) -> tuple[np.ndarray, list[list[dict]]]:
    """Probabilities of `texts` (as `pipeline.predict_proba`) and, for each text, up to `n` terms that
    pushed it most towards its most probable label, with their weight: what the term adds to that
    label's calibrated log-odds. `Model.explain` is the way in."""
    text_steps, featurizer, classifier = _explainable_steps(pipeline)
    texts = list(texts)
    for step in text_steps:
        texts = step.transform(texts)
    features = featurizer.transform(texts).tocsr()
    proba = classifier.predict_proba(features)
    explanations = [
        _top_terms(features[i], classifier.coef_[label] / classifier.temperature_, _term_of_column(featurizer, text), n)
        for i, (text, label) in enumerate(zip(texts, proba.argmax(axis=1)))
    ]
    return proba, explanations
