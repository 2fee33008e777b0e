"""Choose the classifier, its regularization, class weights and word n-grams by cross-validation
within a time budget (`qism train --autotune 5m`), like fastText's autotune.

The featurizer is the slow part, so each featurizer setting is fitted once on the documents given and
its matrix shared by every classifier tried on it. The caller gives only the training split: the
held-out documents score the chosen model, so they must not choose it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from .card import describe_knobs
from .classifier import classifier_for
from .config import TrainConfig
from .errors import QismError
from .features import featurizer_for

FOLDS = 3
#: Classifier settings after the given configuration, cheap and likely good first: SGD is the default
#: and fast, LinearSVC a few times slower, complement NB nearly free, logistic regression the slowest.
CLASSIFIER_GRID = (
    ("sgd", 0.5),
    ("sgd", 1.0),
    ("sgd", 2.0),
    ("sgd", 4.0),
    ("linear_svc", 0.3),
    ("linear_svc", 1.0),
    ("complement_nb", 1.0),
    ("logreg", 1.0),
)
#: Word n-gram ranges; those other than the given one are tried with the best classifier found, each
#: featurized once.
WORD_NGRAMS = ((1, 1), (1, 2), (1, 3))
#: A trial's time relative to SGD's on ANT v2.1, to guess a kind's time before its first trial.
RELATIVE_COST = {"complement_nb": 0.2, "sgd": 1.0, "linear_svc": 4.0, "logreg": 20.0}
#: The settings autotune chooses; each trial records them.
KNOBS = ("classifier", "C", "class_weight", "word_ngrams")


def classifier_candidates(base: TrainConfig) -> list[dict]:
    """The given configuration's knobs first (always tried), then the grid, each with the given class
    weight and then the other one (complement NB takes no weights)."""
    candidates = [knobs_of(base)]
    other_weight = None if base.class_weight else "balanced"
    for kind, C in CLASSIFIER_GRID:
        for class_weight in (base.class_weight,) if kind == "complement_nb" else (base.class_weight, other_weight):
            candidate = {**knobs_of(base), "classifier": kind, "C": C, "class_weight": class_weight}
            if candidate not in candidates:
                candidates.append(candidate)
    return candidates


def knobs_of(config: TrainConfig) -> dict:
    return {knob: getattr(config, knob) for knob in KNOBS}


def cv_folds(labels: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds (fewer than FOLDS when a label has fewer training documents)."""
    folds = min(FOLDS, int(np.unique(labels, return_counts=True)[1].min()))
    if folds < 2:
        raise QismError("--autotune needs at least 2 training documents of every label to cross-validate")
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def cv_macro_f1(X, labels: np.ndarray, folds, config: TrainConfig, sample_weight, outlets, n_jobs) -> float:
    """Mean held-out macro-F1 over the folds of the classifier exactly as `train` fits it, calibration
    included: per-label corrections can change which label wins."""
    scores = []
    for fit_rows, check_rows in folds:
        classifier = classifier_for(config, n_jobs)
        weights = None if sample_weight is None else sample_weight[fit_rows]
        classifier.fit(
            X[fit_rows], labels[fit_rows], sample_weight=weights, outlets=None if outlets is None else outlets[fit_rows]
        )
        predicted = classifier.predict(X[check_rows])
        scores.append(
            f1_score(labels[check_rows], predicted, labels=np.unique(labels), average="macro", zero_division=0)
        )
    return float(np.mean(scores))


def estimated_seconds(kind: str, seconds_by_kind: dict[str, float]) -> float:
    """How long a trial of this kind will take: as long as its slowest so far, else the others' times
    scaled by RELATIVE_COST, their median: on a small corpus calibration, not the learner, sets the
    time, and a quick kind would predict an absurd time for a slow one."""
    if kind in seconds_by_kind:
        return seconds_by_kind[kind]
    per_unit = np.median([seconds / RELATIVE_COST[seen] for seen, seconds in seconds_by_kind.items()])
    return float(per_unit) * RELATIVE_COST[kind]


def choose_config(
    texts: list[str],
    labels,
    base: TrainConfig,
    budget_seconds: float,
    *,
    sample_weight=None,
    outlets=None,
    n_jobs: int | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> tuple[TrainConfig, dict]:
    """The best configuration by cross-validated macro-F1 on `texts` (the training split only), and
    the record of the search for the model card.

    The given configuration is tried first, whatever the budget; a later trial is skipped when the
    time it is expected to take would overrun the budget. The featurizer is fitted on all of `texts`
    once per setting, so its idf and boilerplate have seen each fold's checked documents: a small
    optimism shared by every candidate, which ranks them just the same.
    """
    started = time.perf_counter()
    labels = np.asarray(labels, dtype=str)
    folds = cv_folds(labels, base.seed)
    other_ngrams = [ngrams for ngrams in WORD_NGRAMS if ngrams != tuple(base.word_ngrams)]  # a recipe gives a list
    planned = len(classifier_candidates(base)) + len(other_ngrams)
    trials, skipped, seconds_by_kind = [], [], {}

    def run(config: TrainConfig, X) -> dict:
        report(f"autotune {len(trials) + len(skipped) + 1}/{planned}: {describe_knobs(knobs_of(config))}")
        trial_started = time.perf_counter()
        score = cv_macro_f1(X, labels, folds, config, sample_weight, outlets, n_jobs)
        trial = {
            "config": knobs_of(config),
            "cv_macro_f1": round(score, 4),
            "seconds": round(time.perf_counter() - trial_started, 2),
        }
        trials.append(trial)
        return trial

    def fits(estimate: float) -> bool:
        return time.perf_counter() - started + estimate <= budget_seconds

    featurize_started = time.perf_counter()
    X = featurizer_for(base, n_jobs).fit_transform(texts)
    featurize_seconds = time.perf_counter() - featurize_started
    for knobs in classifier_candidates(base):
        config = replace(base, **knobs)
        if trials and not fits(estimated_seconds(config.classifier, seconds_by_kind)):
            skipped.append(knobs)
            continue
        trial = run(config, X)
        seconds_by_kind[config.classifier] = max(trial["seconds"], seconds_by_kind.get(config.classifier, 0))
    best = best_trial(trials)
    for ngrams in other_ngrams:
        config = replace(base, **{**best["config"], "word_ngrams": ngrams})
        if not fits(featurize_seconds + best["seconds"]):
            skipped.append(knobs_of(config))
            continue
        run(config, featurizer_for(config, n_jobs).fit_transform(texts))
    best = best_trial(trials)
    report(f"autotune chose {describe_knobs(best['config'])} (CV macro-F1 {best['cv_macro_f1']:.4f})")
    record = {
        "budget_seconds": budget_seconds,
        "seconds": round(time.perf_counter() - started, 2),
        "documents": len(labels),
        "folds": len(folds),
        "trials": trials,
        "skipped": skipped,
        "chosen": best,
    }
    return replace(base, **best["config"]), record


def best_trial(trials: list[dict]) -> dict:
    """The trial with the best recorded score; the earliest (cheaper, nearer the given configuration) on ties."""
    return max(trials, key=lambda trial: trial["cv_macro_f1"])
