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
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression, SGDClassifier
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
    """n / (n_classes * n_label) per document: every label weighs the same in total."""
    return (len(y_index) / (n_classes * np.bincount(y_index, minlength=n_classes)))[y_index]


def nb_log_count_ratios(X, y_index: np.ndarray, n_classes: int, alpha: float) -> np.ndarray:
    """Per label and feature, log of (share of the label's documents with the feature) over (share of
    the other documents with it), smoothed by `alpha`: NB-SVM's scaling (Wang & Manning, 2012), which
    lets a linear learner start from naive Bayes' evidence."""
    return nb_ratios_from_counts(documents_per_label(X, y_index, n_classes), alpha)


def documents_per_label(X, y_index: np.ndarray, n_classes: int) -> np.ndarray:
    """Per label and feature, how many of the label's documents have the feature (sums over shards)."""
    X = sp.csr_matrix(X)
    present = sp.csr_matrix((np.ones_like(X.data), X.indices, X.indptr), shape=X.shape)
    membership = sp.csr_matrix(
        (np.ones(len(y_index), dtype=X.dtype), (y_index, np.arange(len(y_index)))), shape=(n_classes, len(y_index))
    )
    return np.asarray((membership @ present).todense())


def nb_ratios_from_counts(in_label: np.ndarray, alpha: float) -> np.ndarray:
    """NB log-count ratios (see `nb_log_count_ratios`) from per-label document counts of each feature."""
    p = alpha + in_label
    q = alpha + (in_label.sum(axis=0, keepdims=True) - in_label)
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
    international): its documents are weak evidence against the label, not none.
    """
    names, outlet_index = np.unique(np.asarray(outlets, dtype=str), return_inverse=True)
    counts = np.zeros((len(names), n_classes), dtype=np.int64)
    np.add.at(counts, (outlet_index, y_index), 1)
    uses = counts >= MIN_DOCS_OF_A_USED_LABEL
    several = uses.sum(axis=1) >= 2
    masks = np.ones((n_classes, len(y_index)), dtype=np.float64)
    for k in range(n_classes) if only is None else only:
        negative = y_index != k
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
    `weights` (see `label_problem_weights`)."""
    fitted = Parallel(n_jobs=estimator_jobs(n_jobs), prefer="threads")(
        delayed(_fit_binary)(make, X, y_index == k, label_weights, None if ratios is None else ratios[k])
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
        corpus of which these rows are a shard), else counted on X."""
        n_classes = len(self.classes_)
        make = functools.partial(_make_estimator, self.kind, self.C, self.random_state)
        if self.kind in ONE_VS_REST:
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


class LinearClassifier(LinearFitSteps, ClassifierMixin, BaseEstimator):
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
        return softmax(self.decision_function(X) / self.temperature_, axis=1)

    def predict(self, X) -> np.ndarray:
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
