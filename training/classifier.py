"""The classifier step of a qism pipeline: any of the offered learners, reduced to linear weights.

Every classifier qism offers is linear at prediction time, so `LinearClassifier` keeps only its
weights, biases and a softmax temperature fitted on held-out data: a saved model is a few arrays, and
its scores are calibrated probabilities whichever learner produced the weights. Training-time devices,
NB scaling and optional per-class corrections (vector scaling), are folded into the weights, so the
saved arrays stay the same: a softmax of the decisions over the temperature.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_softmax, logit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from .config import CLASSIFIERS, DEFAULT, TrainConfig, estimator_jobs

#: Fewer held-out documents than this fit a temperature that is mostly noise; keep T = 1 then.
MIN_CALIBRATION_DOCS = 100
#: How many documents' worth of evidence keeps per-class corrections at "temperature only"; a small
#: held-out set then moves them little, a large one as far as its data says.
CLASS_SCALING_PRIOR = 2.0

#: The natural logarithms of the lowest and highest softmax temperature calibration fits (a loaded
#: model's temperature must lie between them too).
LOG_TEMPERATURE_BOUNDS = (-7.0, 5.0)

#: Passes over the data for SGD: its scores stop improving well before it formally converges.
SGD_EPOCHS = 15
#: Learners fitted as one binary problem per label, which NB scaling applies to.
ONE_VS_REST = ("linear_svc", "sgd")
#: Held by every liblinear (LinearSVC) fit: liblinear draws from one process-wide random generator,
#: so fits that threads start at once (one-vs-rest problems, shard models fitted as tasks of a
#: threaded Dask worker) take turns, each drawing the numbers its seed gives, one scaled copy at a time.
LIBLINEAR_LOCK = threading.Lock()


def _make_estimator(kind: str, C: float, random_state: int):
    if kind == "linear_svc":
        return LinearSVC(C=C, random_state=random_state)
    if kind == "sgd":
        return SGDClassifier(loss="hinge", alpha=1e-5 / C, max_iter=SGD_EPOCHS, tol=None, random_state=random_state)
    if kind == "logreg":
        return LogisticRegression(C=C, max_iter=1000, random_state=random_state)
    if kind == "complement_nb":
        return ComplementNB(alpha=1.0 / C)
    raise ValueError(f"unknown classifier {kind!r}; choose one of {', '.join(CLASSIFIERS)}")


def _linear_weights(estimator, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) with one row per class, from a multiclass estimator."""
    if isinstance(estimator, ComplementNB):
        coef, intercept = estimator.feature_log_prob_, np.zeros(n_classes)
    else:
        coef, intercept = estimator.coef_, np.atleast_1d(estimator.intercept_)
    if n_classes == 2 and coef.shape[0] == 1:  # binary problems come as one score for class 1
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return np.asarray(coef, dtype=np.float32), np.asarray(intercept, dtype=np.float32)


def balanced_weights(y_index: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (n_classes * n_label) per document: every label weighs the same in total. A document of
    several labels (`y_index` a label-indicator matrix) weighs the mean of its labels' weights."""
    if y_index.ndim == 2:
        per_label = y_index.sum() / (n_classes * np.maximum(y_index.sum(axis=0), 1))
        n_labels = y_index.sum(axis=1)
        return np.where(n_labels > 0, (y_index @ per_label) / np.maximum(n_labels, 1), 1.0)
    return (len(y_index) / (n_classes * np.bincount(y_index, minlength=n_classes)))[y_index]


def label_indicator(y_index: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels as a documents x labels 0/1 matrix: label indices made one-hot, a matrix kept."""
    if y_index.ndim == 2:
        return np.asarray(y_index, dtype=bool)
    return y_index[:, None] == np.arange(n_classes)


def nb_log_count_ratios(X, y_index: np.ndarray, n_classes: int, alpha: float) -> np.ndarray:
    """Per label and feature, log of (share of the label's documents with the feature) over (share of
    the other documents with it), smoothed by `alpha`: NB-SVM's scaling (Wang & Manning, 2012), which
    lets a linear learner start from naive Bayes' evidence."""
    in_all = None
    if y_index.ndim == 2:
        in_all = documents_per_label(X, np.ones((len(y_index), 1), dtype=bool), 1)
    return nb_ratios_from_counts(documents_per_label(X, y_index, n_classes), alpha, in_all)


def documents_per_label(X, y_index: np.ndarray, n_classes: int) -> np.ndarray:
    """Per label and feature, how many of the label's documents have the feature (sums over shards)."""
    X = sp.csr_matrix(X)
    present = sp.csr_matrix((np.ones_like(X.data), X.indices, X.indptr), shape=X.shape)
    if y_index.ndim == 2:
        membership = sp.csr_matrix(np.asarray(y_index, dtype=X.dtype).T)
    else:
        membership = sp.csr_matrix(
            (np.ones(len(y_index), dtype=X.dtype), (y_index, np.arange(len(y_index)))),
            shape=(n_classes, len(y_index)),
        )
    return np.asarray((membership @ present).todense())


def nb_ratios_from_counts(in_label: np.ndarray, alpha: float, in_all: np.ndarray | None = None) -> np.ndarray:
    """NB log-count ratios (see `nb_log_count_ratios`) from per-label document counts of each feature.
    `in_all` counts the documents with each feature; without it, the per-label counts' sum (a
    document of several labels would count several times there)."""
    in_all = in_label.sum(axis=0, keepdims=True) if in_all is None else in_all
    p = alpha + in_label
    q = alpha + (in_all - in_label)
    return (np.log(p / p.sum(axis=1, keepdims=True)) - np.log(q / q.sum(axis=1, keepdims=True))).astype(np.float32)


#: An outlet uses a label when it has at least this many documents with it.
MIN_DOCS_OF_A_USED_LABEL = 5


def outlet_label_masks(
    y_index: np.ndarray, n_classes: int, outlets: np.ndarray, only: Iterable[int] | None = None, weight: float = 0.0
) -> np.ndarray:
    """Per label and document, 1 if the document counts in the label's one-vs-rest problem, else
    `weight` (0: it is left out).

    Outlets cover different sections: one without a culture section files no article as culture, so
    its articles say nothing against culture, and counting them as negatives teaches the model which
    outlet wrote an article rather than what it is about. A document is left out of a label's problem
    when its outlet uses several labels but not that one. Outlets of a single label (a file per
    section) always count, and a label always keeps some negatives. With `only` (label indices),
    the other labels keep every document whole. A small `weight` instead of 0 suits an outlet that
    files some of a missing section's stories under its other sections (crime news under
    international): its documents are weak evidence against the label, not none. `y_index` may be
    a label-indicator matrix (documents of several labels).
    """
    names, outlet_index = np.unique(np.asarray(outlets, dtype=str), return_inverse=True)
    indicator = label_indicator(y_index, n_classes)
    counts = np.zeros((len(names), n_classes), dtype=np.int64)
    np.add.at(counts, outlet_index, indicator.astype(np.int64))
    uses = counts >= MIN_DOCS_OF_A_USED_LABEL
    several = uses.sum(axis=1) >= 2
    masks = np.ones((n_classes, len(y_index)), dtype=np.float64)
    for k in range(n_classes) if only is None else only:
        negative = ~indicator[:, k]
        silent = (several & ~uses[:, k])[outlet_index] & negative
        if (negative & ~silent).any():
            masks[k, silent] = weight
    return masks


def _fit_binary(make, X, target, sample_weight, ratios):
    """One label against the rest, on features scaled by the label's NB ratios (folded back into
    the weights, so the model still scores plain features)."""
    estimator = make()
    with LIBLINEAR_LOCK if isinstance(estimator, LinearSVC) else contextlib.nullcontext():
        estimator.fit(X if ratios is None else _scaled_by_ratios(X, ratios), target, sample_weight=sample_weight)
    coef = estimator.coef_[0] if ratios is None else estimator.coef_[0] * ratios
    return coef, estimator.intercept_[0]


def label_problem_weights(sample_weight, masks, n_labels: int) -> list:
    """Each label's document weights in its one-vs-rest problem: the documents' own weights times the
    label's mask (see `outlet_label_masks`), either of which may be absent (None)."""
    if masks is None:
        return [sample_weight] * n_labels
    return [masks[k] if sample_weight is None else sample_weight * masks[k] for k in range(n_labels)]


def _one_vs_rest(make, X, y_index, weights, ratios, n_jobs) -> tuple[np.ndarray, np.ndarray]:
    """One binary learner per label, on threads (SGD releases the GIL, and threads share X instead of
    copying it to each process; liblinear's take turns, see `LIBLINEAR_LOCK`), with each label's
    `weights` (see `label_problem_weights`). `y_index` is label indices, or a label-indicator matrix
    for documents of several labels."""
    targets = label_indicator(y_index, len(weights))
    fitted = Parallel(n_jobs=estimator_jobs(n_jobs), prefer="threads")(
        delayed(_fit_binary)(make, X, targets[:, k], label_weights, None if ratios is None else ratios[k])
        for k, label_weights in enumerate(weights)
    )
    return (
        np.vstack([coef for coef, _ in fitted]).astype(np.float32),
        np.asarray([intercept for _, intercept in fitted], dtype=np.float32),
    )


def _scaled_by_ratios(X, ratios):
    """X with each feature scaled by its NB ratio, sharing a sparse X's index arrays (not copied)."""
    X = sp.csr_matrix(X)
    return sp.csr_matrix((X.data * np.take(ratios, X.indices), X.indices, X.indptr), shape=X.shape)


def _sgd_pass(estimator, X, target, weight, ratios) -> None:
    """One pass of a binary SGD learner over these rows (`partial_fit`)."""
    X = X if ratios is None else _scaled_by_ratios(X, ratios)
    estimator.partial_fit(X, target, classes=np.array([False, True]), sample_weight=weight)


def fit_temperature(decision: np.ndarray, y_index: np.ndarray) -> float:
    """The softmax temperature that minimizes log-loss on held-out decisions (temperature scaling)."""

    def log_loss(log_t: float) -> float:
        return -log_softmax(decision / np.exp(log_t), axis=1)[np.arange(len(y_index)), y_index].mean()

    return float(np.exp(minimize_scalar(log_loss, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded").x))


def fit_class_scaling(logits: np.ndarray, y_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class scale and bias of tempered held-out logits that minimize log-loss (vector scaling).

    One temperature cannot fix a learner that is over-confident for one class and timid for another,
    as one-vs-rest LinearSVC often is. A Gaussian prior at scale 1, bias 0 keeps the corrections small
    when the held-out set is.
    """
    n, k = logits.shape
    rows = np.arange(n)
    strength = CLASS_SCALING_PRIOR / n

    def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        scale, bias = params[:k], params[k:]
        log_p = log_softmax(logits * scale + bias, axis=1)
        residual = np.exp(log_p)
        residual[rows, y_index] -= 1
        residual /= n
        loss = -log_p[rows, y_index].mean() + strength * ((scale - 1) @ (scale - 1) + bias @ bias)
        gradient = np.concatenate(
            [(residual * logits).sum(axis=0) + 2 * strength * (scale - 1), residual.sum(axis=0) + 2 * strength * bias]
        )
        return loss, gradient

    start = np.concatenate([np.ones(k), np.zeros(k)])
    bounds = [(0.05, None)] * k + [(None, None)] * k  # a positive scale never reorders a class's scores
    params = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B", bounds=bounds).x
    return params[:k], params[k:]


class LinearFitSteps:
    """The steps of a linear fit, read from the estimator's parameters (`LinearClassifier`'s):
    weighing documents, masking labels per outlet, holding out the calibration share, fitting weights
    on rows or an SGD epoch over a shard, and calibrating. `LinearClassifier.fit` runs them on rows
    in memory; `streaming` drives them over the shards of a corpus larger than memory, so both fit
    the same model where their algorithm is the same. `classes_` must be set first."""

    def label_masks(self, y_index: np.ndarray, outlets) -> np.ndarray | None:
        """Per label and document, its weight in the label's one-vs-rest problem under the outlet
        label sets (see `outlet_label_masks`), or None when they are off; `classes_` names the labels."""
        if not self.outlet_label_sets or outlets is None:
            return None
        only = None
        if self.label_sets_only:
            only = [k for k, label in enumerate(self.classes_) if label in self.label_sets_only]
        return outlet_label_masks(y_index, len(self.classes_), outlets, only, self.label_sets_weight)

    def document_weights(self, y_index: np.ndarray, sample_weight=None) -> np.ndarray | None:
        """The documents' weights in a fit on these rows: their own, times the class balance."""
        if self.class_weight != "balanced":
            return sample_weight
        balance = balanced_weights(y_index, len(self.classes_))
        return balance if sample_weight is None else sample_weight * balance

    def calibration_split(self, y_index: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(fit rows, held-out rows) for calibration: a stratified `calibration_size` share, or None
        when there are too few documents for a temperature worth fitting."""
        n_held = int(round(self.calibration_size * len(y_index)))
        if not self.calibration_size or n_held < MIN_CALIBRATION_DOCS or np.bincount(y_index).min() < 2:
            return None
        rows = np.arange(len(y_index))
        return tuple(train_test_split(rows, test_size=n_held, stratify=y_index, random_state=self.random_state))

    def nb_ratios(self, in_label: np.ndarray) -> np.ndarray | None:
        """NB ratios from per-label document counts of each feature (summed over a corpus's shards),
        or None when this learner does not scale features by them."""
        if not self.nb_scaling or self.kind not in ONE_VS_REST:
            return None
        return nb_ratios_from_counts(in_label, self.nb_scaling)

    def fit_weights(self, X, y_index, weights=None, masks=None, ratios=None) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) fitted on these rows with these document `weights` (see
        `document_weights`) and label `masks`; `ratios` are NB ratios counted elsewhere (over a whole
        corpus of which these rows are a shard), else counted on X. `y_index` is label indices, or a
        label-indicator matrix (a multi-label fit, one-vs-rest whatever the learner)."""
        n_classes = len(self.classes_)
        make = functools.partial(_make_estimator, self.kind, self.C, self.random_state)
        if self.kind in ONE_VS_REST or y_index.ndim == 2:
            if ratios is None and self.nb_scaling:
                ratios = nb_log_count_ratios(X, y_index, n_classes, self.nb_scaling)
            label_weights = label_problem_weights(weights, masks, n_classes)
            return _one_vs_rest(make, X, y_index, label_weights, ratios, self.n_jobs)
        return _linear_weights(make().fit(X, y_index, sample_weight=weights), n_classes)

    def fit_epoch(self, X, y_index, weights=None, masks=None, ratios=None):
        """One epoch of one-vs-rest SGD over these rows (a shard), continuing the epochs before: what
        `partial_fit` is to dask-ml's `Incremental`, with labels as indices into `classes_` and
        `weights`, `masks` and `ratios` as in `fit_weights`, over the whole corpus. `coef_` and
        `intercept_` are the weights so far (temperature 1)."""
        n_classes = len(self.classes_)
        if self.kind != "sgd":
            raise ValueError(f"epochs over shards are SGD's; {self.kind} fits each shard whole")
        if getattr(self, "sgd_problems_", None) is None:
            self.sgd_problems_ = [_make_estimator("sgd", self.C, self.random_state) for _ in range(n_classes)]
        label_weights = label_problem_weights(weights, masks, n_classes)
        Parallel(n_jobs=estimator_jobs(self.n_jobs), prefer="threads")(
            delayed(_sgd_pass)(learner, X, y_index == k, label_weights[k], None if ratios is None else ratios[k])
            for k, learner in enumerate(self.sgd_problems_)
        )
        coef = [
            learner.coef_[0] if ratios is None else learner.coef_[0] * ratios[k]
            for k, learner in enumerate(self.sgd_problems_)
        ]
        self.coef_ = np.vstack(coef).astype(np.float32)
        self.intercept_ = np.asarray([learner.intercept_[0] for learner in self.sgd_problems_], dtype=np.float32)
        self.temperature_ = 1.0
        return self

    def calibrate(self, coef, intercept, held_decision=None, held_y=None):
        """Take these weights, calibrated on held-out decisions (of the model fitted without those
        rows) when given: the softmax temperature, and with `class_scaling` a scale and bias per
        label, folded into the weights."""
        n_classes = len(self.classes_)
        self.temperature_ = 1.0
        scale, bias = np.ones(n_classes), np.zeros(n_classes)
        if held_decision is not None:
            self.temperature_ = fit_temperature(held_decision, held_y)
            if self.class_scaling:
                scale, bias = fit_class_scaling(held_decision / self.temperature_, held_y)
        # decision / T * scale + bias == (scale * decision + T * bias) / T
        self.coef_ = coef * scale.astype(np.float32)[:, None]
        self.intercept_ = (intercept * scale + self.temperature_ * bias).astype(np.float32)
        return self


# --- multi-label: one calibrated probability and one threshold per label ---------------------

#: The threshold of a label that held-out data cannot tune (too few of its documents there).
DEFAULT_LABEL_THRESHOLD = 0.5
#: Held-out documents a label needs to have its own threshold.
MIN_POSITIVES_TO_TUNE = 5
#: Thresholds tried per label, and the shifts of all of them at once in log-odds (for micro-F1).
#: With calibrated probabilities the F1-optimal threshold is half the best F1 (Lipton et al., 2014),
#: so never above 0.5; a floor keeps a label from being added on a small chance. Beyond these bounds
#: a tuned threshold fits the held-out share's noise (a label's plateau of equal F1), which another
#: outlet would not share: on ANT the bounds change micro-F1 by 0.001 or less.
THRESHOLD_GRID = np.round(np.arange(0.15, 0.501, 0.025), 3)
THRESHOLD_SHIFTS = np.linspace(-2.0, 2.0, 17)


def multi_label_targets(y) -> tuple[np.ndarray, np.ndarray] | None:
    """(classes, documents x labels indicator) when `y` is multi-label, as MultiLabelBinarizer's
    conventions have it: a 2-D 0/1 matrix (its labels are the column numbers) or a label list per
    document (labels sorted); None for one label per document."""
    if sp.issparse(y):
        y = y.toarray()
    if isinstance(y, np.ndarray) and y.ndim == 2:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("a label-indicator matrix holds only 0 and 1")
        return np.arange(y.shape[1]), y.astype(bool)
    rows = list(y)
    if not rows or not isinstance(rows[0], (list, tuple, set, frozenset, np.ndarray)):
        return None
    if not all(isinstance(row, (list, tuple, set, frozenset, np.ndarray)) for row in rows):
        raise ValueError("multi-label targets are a list of labels for every document")
    names = sorted({str(label) for row in rows for label in row})
    column = {label: k for k, label in enumerate(names)}
    indicator = np.zeros((len(rows), len(names)), dtype=bool)
    for i, row in enumerate(rows):
        indicator[i, [column[str(label)] for label in row]] = True
    return np.asarray(names, dtype=str), indicator


def chosen_labels(proba: np.ndarray, thresholds) -> np.ndarray:
    """Which labels each document gets: those at or above their threshold, and always its best one."""
    chosen = proba >= thresholds
    chosen[np.arange(len(proba)), proba.argmax(axis=1)] = True
    return chosen


def fit_label_sigmoids(decision: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per label, the scale and bias of held-out decisions whose sigmoid minimizes log-loss (Platt
    scaling, with Platt's smoothed targets so a label of few held-out documents is not made certain)."""
    positives, n = truth.sum(axis=0), len(truth)
    target = np.where(truth, (positives + 1) / (positives + 2), 1 / (n - positives + 2))

    def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        k = decision.shape[1]
        logits = decision * params[:k] + params[k:]
        p = expit(logits)
        loss = -(target * np.log(np.clip(p, 1e-12, None)) + (1 - target) * np.log(np.clip(1 - p, 1e-12, None)))
        residual = (p - target) / n
        return loss.sum() / n, np.concatenate([(residual * decision).sum(axis=0), residual.sum(axis=0)])

    k = decision.shape[1]
    bounds = [(1e-3, None)] * k + [(None, None)] * k  # a positive scale never reorders a label's scores
    params = minimize(loss_and_gradient, np.r_[np.ones(k), np.zeros(k)], jac=True, method="L-BFGS-B", bounds=bounds).x
    return params[:k], params[k:]


def _f1(truth: np.ndarray, predicted: np.ndarray, axis: int = 0) -> np.ndarray:
    """F1 along `axis` of 0/1 arrays (0 where a label is neither true nor predicted)."""
    tp = (truth & predicted).sum(axis=axis)
    wrong = (truth != predicted).sum(axis=axis)
    return np.divide(2 * tp, 2 * tp + wrong, out=np.zeros(np.shape(tp), dtype=np.float64), where=2 * tp + wrong > 0)


def choose_thresholds(proba: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """A threshold per label from held-out probabilities, as LibMultiLabel tunes them: each label's
    own best F1 (macro-F1), then one shift of all of them in log-odds for the best micro-F1 plus
    macro-F1. A label with fewer than MIN_POSITIVES_TO_TUNE held-out documents keeps
    DEFAULT_LABEL_THRESHOLD. A document's best label counts as chosen whatever its threshold (see `chosen_labels`)."""
    n_labels = proba.shape[1]
    best = proba.argmax(axis=1)[:, None] == np.arange(n_labels)
    thresholds = np.full(n_labels, DEFAULT_LABEL_THRESHOLD)
    tuned = truth.sum(axis=0) >= MIN_POSITIVES_TO_TUNE
    for k in np.flatnonzero(tuned):
        predicted = (proba[:, k, None] >= THRESHOLD_GRID) | best[:, k, None]
        f1 = _f1(truth[:, k, None], predicted)
        ties = np.flatnonzero(f1 == f1.max())
        thresholds[k] = THRESHOLD_GRID[ties[len(ties) // 2]]  # the middle of a plateau, not its edge

    def shifted(shift: float) -> np.ndarray:
        return np.where(
            tuned, np.clip(expit(logit(thresholds) + shift), THRESHOLD_GRID[0], THRESHOLD_GRID[-1]), thresholds
        )

    def micro_plus_macro(shift: float) -> float:
        predicted = chosen_labels(proba, shifted(shift))
        return _f1(truth.ravel(), predicted.ravel()) + _f1(truth, predicted).mean()

    scores = np.array([micro_plus_macro(shift) for shift in THRESHOLD_SHIFTS])
    best_shifts = THRESHOLD_SHIFTS[scores == scores.max()]
    return shifted(best_shifts[np.abs(best_shifts).argmin()]).astype(np.float32)


class MultiLabelFitting:
    """`LinearClassifier`'s multi-label side: fitting on label lists or a label-indicator matrix
    (one-vs-rest, a sigmoid and a threshold per label) and scoring such a model. It runs the
    classifier's own fit steps (`LinearFitSteps`: `label_masks`, `document_weights`, `fit_weights`)
    and `decision_function`, so each learner, class weights, NB scaling and outlet label sets work as
    for a single-label model."""

    def _fit_multi_label(self, X, classes, indicator, sample_weight=None, outlets=None):
        """One-vs-rest weights, a sigmoid per label and a threshold per label fitted on a held-out
        `calibration_size` share (see `choose_thresholds`), then the weights refit on all rows."""
        if self.kind not in ONE_VS_REST + ("logreg",):
            raise ValueError(f"a multi-label model learns with linear_svc, sgd or logreg, not {self.kind}")
        self.classes_ = classes
        n_classes = len(classes)
        if n_classes < 2:
            raise ValueError("a classifier needs at least two labels")
        masks = self.label_masks(indicator, outlets)
        self.temperature_ = 1.0
        self.thresholds_ = np.full(n_classes, DEFAULT_LABEL_THRESHOLD, dtype=np.float32)
        scale, bias = np.ones(n_classes), np.zeros(n_classes)
        n_held = int(round(self.calibration_size * len(indicator)))
        if self.calibration_size and n_held >= MIN_CALIBRATION_DOCS:
            first_label = np.where(indicator.any(axis=1), indicator.argmax(axis=1), n_classes)
            stratify = first_label if np.bincount(first_label)[np.unique(first_label)].min() >= 2 else None
            fit_rows, held_rows = train_test_split(
                np.arange(len(indicator)), test_size=n_held, stratify=stratify, random_state=self.random_state
            )
            self.coef_, self.intercept_ = self.fit_weights(
                X[fit_rows],
                indicator[fit_rows],
                self.document_weights(indicator[fit_rows], None if sample_weight is None else sample_weight[fit_rows]),
                None if masks is None else masks[:, fit_rows],
            )
            held = self.decision_function(X[held_rows])
            scale, bias = fit_label_sigmoids(held, indicator[held_rows])
            self.thresholds_ = choose_thresholds(expit(held * scale + bias), indicator[held_rows])
        coef, intercept = self.fit_weights(X, indicator, self.document_weights(indicator, sample_weight), masks)
        self.coef_ = coef * scale.astype(np.float32)[:, None]
        self.intercept_ = (intercept * scale + bias).astype(np.float32)
        return self

    @property
    def is_multi_label(self) -> bool:
        """Whether the fitted model gives each document every label at or above its threshold."""
        return getattr(self, "thresholds_", None) is not None

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy; for a multi-label model, subset accuracy (every label right), `y` as in `fit`."""
        if not self.is_multi_label:
            return super().score(X, y, sample_weight)
        if sp.issparse(y) or (isinstance(y, np.ndarray) and y.ndim == 2):
            truth = np.asarray(y.toarray() if sp.issparse(y) else y, dtype=bool)
        else:
            truth = self.label_columns(y)
        return accuracy_score(truth, self.predict(X).astype(bool), sample_weight=sample_weight)

    def label_columns(self, label_lists) -> np.ndarray:
        """Label lists as a documents x `classes_` 0/1 matrix (labels the model lacks are left out)."""
        column = {str(label): k for k, label in enumerate(self.classes_)}
        indicator = np.zeros((len(label_lists), len(column)), dtype=bool)
        for i, labels in enumerate(label_lists):
            indicator[i, [column[str(label)] for label in labels if str(label) in column]] = True
        return indicator


class LinearClassifier(MultiLabelFitting, LinearFitSteps, ClassifierMixin, BaseEstimator):
    """A linear classifier with calibrated probabilities.

    `kind` picks the learner (LinearSVC, logistic regression, SGD, complement naive Bayes; `C` is the
    inverse regularization strength for all). `class_weight="balanced"` weighs each label inversely to
    its frequency, so a label's share in the training corpus is not learned as a prior that another
    outlet would not share. `nb_scaling` (the smoothing alpha; 0 is off) scales features by NB
    log-count ratios for the one-vs-rest learners (LinearSVC, SGD).

    A stratified `calibration_size` share of the training rows is first held out to fit the softmax
    temperature (and, with `class_scaling`, a scale and bias per label), then the weights are refit
    on all rows. Per-label corrections fit the training corpus's label mix, which a new outlet does
    not share, so they are off by default.

    With `outlet_label_sets`, `fit` takes the outlet of each document (`outlets`) and leaves an
    outlet's documents out of the one-vs-rest problems of the labels it does not use (see
    `outlet_label_masks`); it applies to the one-vs-rest learners. `label_sets_only` (label names)
    limits that to these labels' problems, and such documents keep `label_sets_weight` there.
    Defaults are `qism train`'s.
    """

    def __init__(
        self,
        kind: str = DEFAULT.classifier,
        C: float = DEFAULT.C,
        class_weight: str | None = DEFAULT.class_weight,
        nb_scaling: float = DEFAULT.nb_scaling,
        calibration_size: float = DEFAULT.calibration_size,
        class_scaling: bool = DEFAULT.class_scaling,
        outlet_label_sets: bool = DEFAULT.outlet_label_sets,
        label_sets_only: tuple[str, ...] = DEFAULT.label_set_labels,
        label_sets_weight: float = DEFAULT.label_set_weight,
        n_jobs: int | None = None,
        random_state: int = DEFAULT.seed,
    ):
        self.kind = kind
        self.C = C
        self.class_weight = class_weight
        self.nb_scaling = nb_scaling
        self.calibration_size = calibration_size
        self.class_scaling = class_scaling
        self.outlet_label_sets = outlet_label_sets
        self.label_sets_only = label_sets_only
        self.label_sets_weight = label_sets_weight
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None, outlets=None):
        """Fit on labels `y`: one per document, or several (a label-indicator matrix or a list of
        labels per document, see `multi_label_targets`), which makes a multi-label model."""
        multi_label = multi_label_targets(y)
        if multi_label is not None:
            return self._fit_multi_label(X, *multi_label, sample_weight, outlets)
        self.__dict__.pop("thresholds_", None)
        y = np.asarray(y)
        classes, y_index = np.unique(y.astype(str) if y.dtype == object else y, return_inverse=True)
        self.classes_ = classes  # numbers stay numbers; text is a str array, saved without pickle
        if len(classes) < 2:
            raise ValueError("a classifier needs at least two labels")
        masks = self.label_masks(y_index, outlets)
        held = ()
        split = self.calibration_split(y_index)
        if split is not None:
            fit_rows, held_rows = split
            self.coef_, self.intercept_ = self.fit_weights(
                X[fit_rows],
                y_index[fit_rows],
                self.document_weights(y_index[fit_rows], None if sample_weight is None else sample_weight[fit_rows]),
                None if masks is None else masks[:, fit_rows],
            )
            held = (self.decision_function(X[held_rows]), y_index[held_rows])
        coef, intercept = self.fit_weights(X, y_index, self.document_weights(y_index, sample_weight), masks)
        return self.calibrate(coef, intercept, *held)

    def fit_toward(self, X, y_index, prior: Prior, X_unlabeled=None) -> dict:
        """Fit to labeled rows (`y_index` into `prior.classes`) toward a base model's weights, see
        `fit_toward_base`; returns the record of the choices made."""
        return fit_toward_base(self, X, y_index, prior, X_unlabeled)

    def _weights_by_feature(self) -> np.ndarray:
        """`coef_.T` as a C-contiguous array, made once per `coef_`: a sparse matrix times the plain
        transpose copies all the weights on every call (milliseconds for one article on a large model).
        Derived, so never saved: the leading underscore keeps it out of model files and pickles."""
        cached = getattr(self, "_coef_by_feature", None)
        if cached is None or cached[0] is not self.coef_:
            cached = (self.coef_, np.ascontiguousarray(self.coef_.T))
            self._coef_by_feature = cached
        return cached[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_coef_by_feature", None)
        return state

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return np.asarray(X @ self._weights_by_feature()) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities: of each label, in a multi-label model (a row need not sum to 1)."""
        if self.is_multi_label:
            return expit(self.decision_function(X))
        return softmax(self.decision_function(X) / self.temperature_, axis=1)

    def predict(self, X) -> np.ndarray:
        """The best label of each document; for a multi-label model, a documents x labels 0/1
        matrix of its chosen labels (MultiLabelBinarizer's convention, columns in `classes_` order)."""
        if self.is_multi_label:
            return chosen_labels(self.predict_proba(X), self.thresholds_).astype(np.int64)
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


def classifier_for(config: TrainConfig, n_jobs: int | None = None) -> LinearClassifier:
    """The classifier a training configuration asks for."""
    return LinearClassifier(
        config.classifier,
        C=config.C,
        class_weight=config.class_weight,
        nb_scaling=config.nb_scaling,
        calibration_size=config.calibration_size,
        class_scaling=config.class_scaling,
        outlet_label_sets=config.outlet_label_sets or bool(config.label_set_labels),
        label_sets_only=config.label_set_labels,
        label_sets_weight=config.label_set_weight,
        n_jobs=n_jobs,
        random_state=config.seed,
    )


# --- a model of a newsroom's sections, fitted toward a base model's weights ----------------------

#: Strengths of the prior toward the base weights that cross-validation chooses from (per model;
#: strong to weak, each fit starting from the last), and the factors then tried on each section's.
PRIOR_STRENGTHS = (1.0, 0.1, 0.01, 1e-3, 1e-4, 1e-5, 1e-6)
SECTION_STRENGTH_FACTORS = (0.1, 10.0)
#: The sweep stops once the loss is this much above its best for two strengths in a row (not on a plateau).
SWEEP_MARGIN = 1e-3
#: Folds of the cross-validation that chooses the strengths (fewer when a label has fewer articles).
PRIOR_FOLDS = 3
#: Iterations of L-BFGS per fit: the problem is small (the user's articles, the columns they use).
PRIOR_MAX_ITER = 150


#: Weights move only for terms found in at least this many of the labeled articles: a term of one
#: article would learn that article by heart (and they are most of the columns, so most of the time).
MIN_DOCS_OF_A_MOVED_COLUMN = 2
#: L-BFGS's memory (pairs of steps kept) and its stopping rule: the loss falls by less than this share.
LBFGS_MEMORY = 10
LBFGS_TOLERANCE = 1e-5


def lbfgs(loss_and_gradient, x: np.ndarray, max_iter: int = PRIOR_MAX_ITER) -> np.ndarray:
    """The minimum of a smooth convex function by L-BFGS (two-loop recursion, backtracking Armijo line
    search): plain NumPy, several times faster than scipy's L-BFGS-B on a million parameters, whose
    bound handling this problem does not need."""
    loss, gradient = loss_and_gradient(x)
    steps: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(max_iter):
        direction = -gradient
        alphas = []
        for s_k, y_k, rho in reversed(steps):
            alpha = rho * (s_k @ direction)
            direction -= alpha * y_k
            alphas.append(alpha)
        if steps:
            s_k, y_k, _ = steps[-1]
            direction *= (s_k @ y_k) / (y_k @ y_k)
        for (s_k, y_k, rho), alpha in zip(steps, reversed(alphas)):
            direction += s_k * (alpha - rho * (y_k @ direction))
        slope = gradient @ direction
        if slope >= 0:  # not a descent direction: start the memory again
            steps, direction, slope = [], -gradient, -(gradient @ gradient)
        step = 1.0 if steps else min(1.0, 1.0 / max(np.abs(gradient).max(), 1e-12))
        for _ in range(30):
            new_x = x + step * direction
            new_loss, new_gradient = loss_and_gradient(new_x)
            if new_loss <= loss + 1e-4 * step * slope:
                break
            step /= 2
        else:
            break
        s_k, y_k = new_x - x, new_gradient - gradient
        if s_k @ y_k > 1e-12:
            steps = [*steps[-(LBFGS_MEMORY - 1) :], (s_k, y_k, 1.0 / (s_k @ y_k))]
        done = loss - new_loss <= LBFGS_TOLERANCE * max(abs(loss), 1.0)
        x, loss, gradient = new_x, new_loss, new_gradient
        if done:
            break
    return x


class PriorFit:
    """Softmax weights of fixed labeled rows under a Gaussian prior centred on `prior_coef` (Chelba &
    Acero, 2004): minimize the mean weighted log-loss plus strength_k / 2 * ||w_k - prior_k||^2 for
    each label k. Only the columns of terms found in `MIN_DOCS_OF_A_MOVED_COLUMN` rows or more move
    (the others keep the prior), so a few hundred articles fit in seconds; biases start at
    `prior_intercept` and are free. `solve` starts from the last solution, so a sweep of strengths
    from strong to weak costs little more than one fit."""

    def __init__(self, X, y_index, prior_coef, prior_intercept, sample_weight=None):
        X = sp.csr_matrix(X, dtype=np.float64)
        self.prior_coef, self.n_classes = prior_coef, prior_coef.shape[0]
        self.active = np.flatnonzero(np.bincount(X.indices, minlength=X.shape[1]) >= MIN_DOCS_OF_A_MOVED_COLUMN)
        self.X_active = X[:, self.active]
        self.X_active_t = self.X_active.T.tocsr()
        self.base_logits = prior_logits(self.X_active, prior_coef[:, self.active])
        weight = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.weight = weight / weight.sum()
        self.onehot = np.zeros((X.shape[0], self.n_classes))
        self.onehot[np.arange(X.shape[0]), y_index] = 1.0
        self.size = self.n_classes * len(self.active)
        self.params = np.concatenate([np.zeros(self.size), np.asarray(prior_intercept, dtype=np.float64)])

    def _loss_and_gradient(self, params, strengths):
        delta, bias = params[: self.size].reshape(self.n_classes, -1), params[self.size :]
        log_p = log_softmax(self.base_logits + np.asarray(self.X_active @ delta.T) + bias, axis=1)
        residual = (np.exp(log_p) - self.onehot) * self.weight[:, None]
        loss = -(self.weight * (log_p * self.onehot).sum(axis=1)).sum() + 0.5 * (strengths * delta * delta).sum()
        gradient = np.asarray(self.X_active_t @ residual).T + strengths * delta
        return loss, np.concatenate([gradient.ravel(), residual.sum(axis=0)])

    def solve(self, strengths) -> PriorFit:
        strengths = np.broadcast_to(np.asarray(strengths, dtype=np.float64), (self.n_classes,))[:, None]
        with threadpool_limits(1):  # BLAS threads only fight over vectors this small (5x slower on a busy machine)
            self.params = lbfgs(lambda params: self._loss_and_gradient(params, strengths), self.params)
        return self

    def decision(self, X, prior_logits: np.ndarray) -> np.ndarray:
        """Decisions of rows X (all the features) by the weights solved; `prior_logits` are theirs by
        the prior (`prior_logits`), computed once for all fits."""
        delta = self.params[: self.size].reshape(self.n_classes, -1)
        return prior_logits + np.asarray(sp.csr_matrix(X)[:, self.active] @ delta.T) + self.params[self.size :]

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) as float32, coef of `prior_coef`'s shape."""
        coef = np.array(self.prior_coef, dtype=np.float32)
        coef[:, self.active] += self.params[: self.size].reshape(self.n_classes, -1).astype(np.float32)
        return coef, self.params[self.size :].astype(np.float32)


def prior_logits(X, prior_coef: np.ndarray) -> np.ndarray:
    """X's decisions by the prior's weights (without biases), as float64."""
    return np.asarray(sp.csr_matrix(X) @ prior_coef.T).astype(np.float64)


def fit_toward_prior(X, y_index, prior_coef, prior_intercept, strengths, sample_weight=None):
    """(coef, intercept) of `PriorFit` solved for `strengths` (one per label, or one for all)."""
    return PriorFit(X, y_index, prior_coef, prior_intercept, sample_weight).solve(strengths).weights()


def prior_folds(y_index: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold number per row, each label's rows dealt round-robin in a seeded order (stratified; a
    label of one article lands in one fold, where the prior alone speaks for it)."""
    folds = np.empty(len(y_index), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for label in np.unique(y_index):
        rows = rng.permutation(np.flatnonzero(y_index == label))
        folds[rows] = (np.arange(len(rows)) + rng.integers(n_folds)) % n_folds
    return folds


@dataclass
class PriorProblem:
    """Labeled rows and the prior their model is fitted toward, with what cross-validation needs."""

    X: sp.csr_matrix
    y_index: np.ndarray
    prior_coef: np.ndarray
    prior_intercept: np.ndarray
    sample_weight: np.ndarray
    folds: np.ndarray
    _fits: dict = field(default_factory=dict)

    def __post_init__(self):
        self.prior_logits = prior_logits(self.X, self.prior_coef)

    def fitted(self, strengths, rows=None, extra=None) -> PriorFit:
        """A `PriorFit` of `rows` (all by default) plus `extra` (X, y_index, weight) rows, solved for
        `strengths`; the fits of a fold without extra rows are kept and warm-started."""
        rows = np.arange(len(self.y_index)) if rows is None else rows
        X, y, w = self.X[rows], self.y_index[rows], self.sample_weight[rows]
        if extra is not None:
            X, y, w = sp.vstack([X, extra[0]]).tocsr(), np.concatenate([y, extra[1]]), np.concatenate([w, extra[2]])
            return PriorFit(X, y, self.prior_coef, self.prior_intercept, w).solve(strengths)
        key = rows.tobytes()
        if key not in self._fits:
            self._fits[key] = PriorFit(X, y, self.prior_coef, self.prior_intercept, w)
        return self._fits[key].solve(strengths)

    def out_of_fold(self, strengths, extra_for_fold=None) -> np.ndarray:
        """Decisions of each row by the model fitted without its fold (`extra_for_fold(fit, rows)` may
        add rows, such as confidently labeled unlabeled articles)."""
        decision = np.zeros((len(self.y_index), self.prior_coef.shape[0]))
        for fold in np.unique(self.folds):
            rows, held = np.flatnonzero(self.folds != fold), np.flatnonzero(self.folds == fold)
            fit = self.fitted(strengths, rows)
            if extra_for_fold is not None:
                fit = self.fitted(strengths, rows, extra_for_fold(fit, rows))
            decision[held] = fit.decision(self.X[held], self.prior_logits[held])
        return decision

    def log_loss(self, decision: np.ndarray) -> float:
        """Weighted mean log-loss of decisions (weights balance the labels, as in the fit)."""
        log_p = log_softmax(decision, axis=1)[np.arange(len(self.y_index)), self.y_index]
        return float(-(self.sample_weight * log_p).sum() / self.sample_weight.sum())


#: Shares of the base's weights tried as the prior's centre (1: the base as it is; 0: nothing of it, the
#: user's articles alone on the base's features), at `PRIOR_SCALE_STRENGTH`. Weights of terms the
#: user's articles never use keep the centre, so where the base's sections are not the user's (an
#: outlet whose sections share names, not content), a full-size centre outvotes the user's articles.
PRIOR_SCALES = (1.0, 0.5, 0.2, 0.0)
PRIOR_SCALE_STRENGTH = 1e-4


def choose_prior_scale(problem: PriorProblem) -> tuple[PriorProblem, dict]:
    """The problem with its prior scaled by the share of `PRIOR_SCALES` of lowest cross-validated
    log-loss (ties: the larger share), and the record of the choice."""
    tried, problems = {}, {}
    for scale in PRIOR_SCALES:
        problems[scale] = replace(
            problem, prior_coef=problem.prior_coef * np.float32(scale), prior_intercept=problem.prior_intercept * scale
        )
        problems[scale]._fits = {}
        strengths = np.full(problem.prior_coef.shape[0], PRIOR_SCALE_STRENGTH)
        tried[scale] = problems[scale].log_loss(problems[scale].out_of_fold(strengths))
    best = min(tried, key=lambda scale: (tried[scale], -scale))
    return problems[best], {"scale": best, "scale_cv_log_loss": {f"{k:g}": round(v, 4) for k, v in tried.items()}}


def choose_prior_strengths(problem: PriorProblem) -> tuple[np.ndarray, dict]:
    """Per-label prior strengths chosen by cross-validated log-loss: first one strength for the
    model (from `PRIOR_STRENGTHS`), then each label's times each of `SECTION_STRENGTH_FACTORS`, kept
    where it lowers the loss. Returns the strengths and the record of the search."""
    n_classes = problem.prior_coef.shape[0]
    tried = {}
    for strength in PRIOR_STRENGTHS:  # strong to weak; the loss has one minimum, so stop two past it
        tried[strength] = problem.log_loss(problem.out_of_fold(np.full(n_classes, strength)))
        if len(tried) >= 3 and min(tried.values()) < min(list(tried.values())[-2:]) - SWEEP_MARGIN:
            break
    best = min(tried, key=lambda s: (tried[s], -s))  # ties: the stronger prior
    strengths, loss = np.full(n_classes, best), tried[best]
    changed = {}
    for k in range(n_classes):
        for factor in SECTION_STRENGTH_FACTORS:
            candidate = strengths.copy()
            candidate[k] *= factor
            candidate_loss = problem.log_loss(problem.out_of_fold(candidate))
            if candidate_loss < loss - 1e-4:
                strengths, loss, changed[k] = candidate, candidate_loss, float(candidate[k])
    record = {
        "strength": float(best),
        "cv_log_loss": {f"{s:g}": round(v, 4) for s, v in tried.items()},
        "section_strengths": changed,
        "final_cv_log_loss": round(loss, 4),
    }
    return strengths, record


#: Self-training: an unlabeled article counts when the model gives its label this probability or
#: more, at most this many times the labeled articles of that label, each at this share of a labeled
#: article's weight.
SELF_TRAINING_CONFIDENCE = 0.9
SELF_TRAINING_PER_LABELED = 4
SELF_TRAINING_WEIGHT = 0.5
#: They are used only when they raise cross-validated macro-F1 by this much without raising the log-loss:
#: a smaller gain on a few labeled articles is noise, and the rule is never to make the model worse.
SELF_TRAINING_MIN_GAIN = 0.02


def confident_rows(decision: np.ndarray, labeled_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels) of the unlabeled rows whose softmax probability is at least
    `SELF_TRAINING_CONFIDENCE`, the most confident first, at most `SELF_TRAINING_PER_LABELED` times
    each label's labeled articles (so one large section does not swamp the others)."""
    proba = softmax(decision, axis=1)
    best, confidence = proba.argmax(axis=1), proba.max(axis=1)
    rows, labels = [], []
    for k, labeled in enumerate(labeled_counts):
        candidates = np.flatnonzero((best == k) & (confidence >= SELF_TRAINING_CONFIDENCE))
        chosen = candidates[np.argsort(-confidence[candidates], kind="stable")][: SELF_TRAINING_PER_LABELED * labeled]
        rows.append(chosen)
        labels.append(np.full(len(chosen), k))
    return np.concatenate(rows).astype(np.int64), np.concatenate(labels).astype(np.int64)


def _macro_f1(problem: PriorProblem, decision: np.ndarray) -> float:
    present = np.unique(problem.y_index)
    return float(f1_score(problem.y_index, decision.argmax(axis=1), labels=present, average="macro", zero_division=0))


def self_training_rows(problem: PriorProblem, strengths: np.ndarray, X_unlabeled) -> tuple[tuple | None, dict]:
    """Confident unlabeled rows to add (X, y_index, weight), or None when cross-validation says they
    do not help: each fold's model labels the unlabeled articles, refits with its confident ones and
    is scored on the fold; they are kept only if out-of-fold macro-F1 rises by `SELF_TRAINING_MIN_GAIN`
    and the log-loss does not. Returns them with the record of the comparison."""
    n_classes = problem.prior_coef.shape[0]
    weight = SELF_TRAINING_WEIGHT * float(problem.sample_weight.mean())

    unlabeled_prior = prior_logits(X_unlabeled, problem.prior_coef)

    def extra(fit, rows):
        chosen, labels = confident_rows(
            fit.decision(X_unlabeled, unlabeled_prior), np.bincount(problem.y_index[rows], minlength=n_classes)
        )
        return X_unlabeled[chosen], labels, np.full(len(chosen), weight)

    without = problem.out_of_fold(strengths)
    with_them = problem.out_of_fold(strengths, extra)
    f1 = (_macro_f1(problem, without), _macro_f1(problem, with_them))
    loss = (problem.log_loss(without), problem.log_loss(with_them))
    used = f1[1] >= f1[0] + SELF_TRAINING_MIN_GAIN and loss[1] <= loss[0]
    everything = np.arange(len(problem.y_index))
    chosen = extra(problem.fitted(strengths, everything), everything) if used else None
    record = {
        "unlabeled": X_unlabeled.shape[0],
        "used": bool(used),
        "added": 0 if chosen is None else len(chosen[1]),
        "cv_macro_f1": {"without": round(f1[0], 4), "with": round(f1[1], 4)},
        "cv_log_loss": {"without": round(loss[0], 4), "with": round(loss[1], 4)},
    }
    return chosen, record


@dataclass
class Prior:
    """What a model fitted toward a base starts from: its labels, and per label the base's calibrated
    weights (the base's decision over its temperature) or zeros for a label the base does not have."""

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray

    @classmethod
    def from_base(cls, base: LinearClassifier, classes) -> Prior:
        rows = {str(label): k for k, label in enumerate(base.classes_)}
        coef = np.zeros((len(classes), base.coef_.shape[1]), dtype=np.float32)
        intercept = np.zeros(len(classes), dtype=np.float32)
        for k, label in enumerate(classes):
            if label in rows:
                coef[k] = base.coef_[rows[label]] / base.temperature_
                intercept[k] = base.intercept_[rows[label]] / base.temperature_
        return cls(np.asarray(classes, dtype=str), coef, intercept)


def fit_toward_base(classifier: LinearClassifier, X, y_index, prior: Prior, X_unlabeled=None) -> dict:
    """Fit `classifier` (its weights, labels and temperature) to labeled rows toward `prior`: strengths
    by cross-validation (`choose_prior_strengths`), confident unlabeled rows where they help
    (`self_training_rows`), then the temperature on out-of-fold decisions. Returns the record of
    the choices for the card."""
    y_index = np.asarray(y_index)
    counts = np.bincount(y_index, minlength=len(prior.classes))
    weight = 1.0 / counts[y_index]  # every label with articles weighs the same in total
    n_folds = int(min(PRIOR_FOLDS, max(2, counts[counts > 0].max())))
    problem = PriorProblem(
        sp.csr_matrix(X),
        y_index,
        prior.coef,
        prior.intercept,
        weight * len(y_index) / weight.sum(),
        prior_folds(y_index, n_folds, classifier.random_state),
    )
    problem, scaled = choose_prior_scale(problem)
    strengths, record = choose_prior_strengths(problem)
    record = {**scaled, **record}
    record["section_strengths"] = {str(prior.classes[k]): v for k, v in record["section_strengths"].items()}
    extra = None
    if X_unlabeled is not None and X_unlabeled.shape[0]:
        extra, record["self_training"] = self_training_rows(problem, strengths, sp.csr_matrix(X_unlabeled))
    decision = problem.out_of_fold(strengths, (lambda *_: extra) if extra is not None else None)
    classifier.temperature_ = fit_temperature(decision, y_index)
    classifier.classes_ = prior.classes
    classifier.coef_, classifier.intercept_ = problem.fitted(strengths, extra=extra).weights()
    record["temperature"] = round(classifier.temperature_, 4)
    record["folds"] = n_folds
    return record
