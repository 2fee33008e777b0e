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

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_softmax, logit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

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
        if ratios is not None:
            X = sp.csr_matrix(X, copy=True)
            X.data *= ratios[X.indices]
        estimator.fit(X, target, sample_weight=sample_weight)
    coef = estimator.coef_[0] if ratios is None else estimator.coef_[0] * ratios
    return coef, estimator.intercept_[0]


def _one_vs_rest(make, X, y_index, n_classes, sample_weight, ratios, masks, n_jobs) -> tuple[np.ndarray, np.ndarray]:
    """One binary learner per label, on threads (SGD releases the GIL, and threads share X instead of
    copying it to each process; liblinear's take turns, see `LIBLINEAR_LOCK`). `masks` (see
    `outlet_label_masks`) weigh each label's documents. `y_index` is label indices, or a label-indicator
    matrix for documents of several labels."""
    if masks is not None:
        weights = [masks[k] if sample_weight is None else sample_weight * masks[k] for k in range(n_classes)]
    else:
        weights = [sample_weight] * n_classes
    targets = label_indicator(y_index, n_classes)
    fitted = Parallel(n_jobs=estimator_jobs(n_jobs), prefer="threads")(
        delayed(_fit_binary)(make, X, targets[:, k], weights[k], None if ratios is None else ratios[k])
        for k in range(n_classes)
    )
    return (
        np.vstack([coef for coef, _ in fitted]).astype(np.float32),
        np.asarray([intercept for _, intercept in fitted], dtype=np.float32),
    )


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
    (one-vs-rest, a sigmoid and a threshold per label) and scoring such a model. It uses the
    classifier's own seams (`_fit_weights`, `_label_masks`, `decision_function`), so each learner,
    class weights, NB scaling and outlet label sets work as for a single-label model."""

    def _fit_multi_label(self, X, classes, indicator, sample_weight=None, outlets=None):
        """One-vs-rest weights, a sigmoid per label and a threshold per label fitted on a held-out
        `calibration_size` share (see `choose_thresholds`), then the weights refit on all rows."""
        if self.kind not in ONE_VS_REST + ("logreg",):
            raise ValueError(f"a multi-label model learns with linear_svc, sgd or logreg, not {self.kind}")
        self.classes_ = classes
        n_classes = len(classes)
        if n_classes < 2:
            raise ValueError("a classifier needs at least two labels")
        masks = self._label_masks(indicator, outlets)
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
            self.coef_, self.intercept_ = self._fit_weights(
                X[fit_rows],
                indicator[fit_rows],
                n_classes,
                None if sample_weight is None else sample_weight[fit_rows],
                None if masks is None else masks[:, fit_rows],
            )
            held = self.decision_function(X[held_rows])
            scale, bias = fit_label_sigmoids(held, indicator[held_rows])
            self.thresholds_ = choose_thresholds(expit(held * scale + bias), indicator[held_rows])
        coef, intercept = self._fit_weights(X, indicator, n_classes, sample_weight, masks)
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


class LinearClassifier(MultiLabelFitting, ClassifierMixin, BaseEstimator):
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

    def _fit_weights(self, X, y_index, n_classes, sample_weight=None, masks=None, ratios=None):
        """(coef, intercept) fitted on these rows; `ratios` are NB ratios counted elsewhere (over a
        whole corpus of which these rows are a shard), else counted on X."""
        if self.class_weight == "balanced":
            balance = balanced_weights(y_index, n_classes)
            sample_weight = balance if sample_weight is None else sample_weight * balance
        make = functools.partial(_make_estimator, self.kind, self.C, self.random_state)
        if self.kind in ONE_VS_REST or y_index.ndim == 2:
            if ratios is None and self.nb_scaling:
                ratios = nb_log_count_ratios(X, y_index, n_classes, self.nb_scaling)
            return _one_vs_rest(make, X, y_index, n_classes, sample_weight, ratios, masks, self.n_jobs)
        return _linear_weights(make().fit(X, y_index, sample_weight=sample_weight), n_classes)

    def _label_masks(self, y_index: np.ndarray, outlets) -> np.ndarray | None:
        """The outlet label masks `outlet_label_sets` asks for (see `outlet_label_masks`), else None."""
        if not (self.outlet_label_sets and outlets is not None):
            return None
        only = (
            [k for k, label in enumerate(self.classes_) if label in self.label_sets_only]
            if self.label_sets_only
            else None
        )
        return outlet_label_masks(y_index, len(self.classes_), outlets, only, self.label_sets_weight)

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
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError("a classifier needs at least two labels")
        masks = self._label_masks(y_index, outlets)
        self.temperature_ = 1.0
        scale, bias = np.ones(n_classes), np.zeros(n_classes)
        counts = np.bincount(y_index)
        n_held = int(round(self.calibration_size * len(y_index)))
        if self.calibration_size and n_held >= MIN_CALIBRATION_DOCS and counts.min() >= 2:
            fit_rows, held_rows = train_test_split(
                np.arange(len(y_index)), test_size=n_held, stratify=y_index, random_state=self.random_state
            )
            self.coef_, self.intercept_ = self._fit_weights(
                X[fit_rows],
                y_index[fit_rows],
                n_classes,
                None if sample_weight is None else sample_weight[fit_rows],
                None if masks is None else masks[:, fit_rows],
            )
            held = self.decision_function(X[held_rows])
            self.temperature_ = fit_temperature(held, y_index[held_rows])
            if self.class_scaling:
                scale, bias = fit_class_scaling(held / self.temperature_, y_index[held_rows])
        coef, intercept = self._fit_weights(X, y_index, n_classes, sample_weight, masks)
        # decision / T * scale + bias == (scale * decision + T * bias) / T
        self.coef_ = coef * scale.astype(np.float32)[:, None]
        self.intercept_ = (intercept * scale + self.temperature_ * bias).astype(np.float32)
        return self

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
