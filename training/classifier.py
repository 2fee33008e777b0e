"""The classifier step of a qism pipeline: any of the offered learners, reduced to linear weights.

Every classifier qism offers is linear at prediction time, so `LinearClassifier` keeps only its
weights, biases and a softmax temperature fitted on held-out data: a saved model is a few arrays, and
its scores are calibrated probabilities whichever learner produced the weights.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

#: Fewer held-out documents than this fit a temperature that is mostly noise; keep T = 1 then.
MIN_CALIBRATION_DOCS = 100

CLASSIFIERS = ("linear_svc", "logreg", "sgd", "complement_nb")


def _make_estimator(kind: str, C: float, n_jobs: int | None, random_state: int):
    if kind == "linear_svc":
        return OneVsRestClassifier(LinearSVC(C=C, random_state=random_state), n_jobs=n_jobs)
    if kind == "logreg":
        return LogisticRegression(C=C, max_iter=1000, random_state=random_state)
    if kind == "sgd":
        return SGDClassifier(loss="modified_huber", alpha=1e-4 / C, n_jobs=n_jobs, random_state=random_state)
    if kind == "complement_nb":
        return ComplementNB(alpha=1.0 / C)
    raise ValueError(f"unknown classifier {kind!r}; choose one of {', '.join(CLASSIFIERS)}")


def _linear_weights(estimator, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) with one row per class, whichever estimator produced them."""
    if isinstance(estimator, OneVsRestClassifier):
        coef = np.vstack([e.coef_ for e in estimator.estimators_])
        intercept = np.concatenate([np.atleast_1d(e.intercept_) for e in estimator.estimators_])
    elif isinstance(estimator, ComplementNB):
        coef, intercept = estimator.feature_log_prob_, np.zeros(n_classes)
    else:
        coef, intercept = estimator.coef_, np.atleast_1d(estimator.intercept_)
    if n_classes == 2 and coef.shape[0] == 1:  # binary problems come as one score for class 1
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return np.asarray(coef, dtype=np.float32), np.asarray(intercept, dtype=np.float32)


def fit_temperature(decision: np.ndarray, y_index: np.ndarray) -> float:
    """The softmax temperature that minimizes log-loss on held-out decisions (temperature scaling)."""

    def log_loss(log_t: float) -> float:
        return -log_softmax(decision / np.exp(log_t), axis=1)[np.arange(len(y_index)), y_index].mean()

    return float(np.exp(minimize_scalar(log_loss, bounds=(-7.0, 5.0), method="bounded").x))


class LinearClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier with calibrated probabilities.

    `kind` picks the learner (LinearSVC, logistic regression, SGD, complement naive Bayes; `C` is the
    inverse regularization strength for all). A stratified `calibration_size` share of the training
    rows is first held out to fit the softmax temperature, then the weights are refit on all rows.
    """

    def __init__(self, kind: str = "linear_svc", C: float = 1.0, calibration_size: float = 0.1,
                 n_jobs: int | None = None, random_state: int = 42):
        self.kind = kind
        self.C = C
        self.calibration_size = calibration_size
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit_weights(self, X, y_index, n_classes):
        estimator = _make_estimator(self.kind, self.C, self.n_jobs, self.random_state)
        estimator.fit(X, y_index)
        return _linear_weights(estimator, n_classes)

    def fit(self, X, y):
        classes, y_index = np.unique(np.asarray(y, dtype=str), return_inverse=True)
        self.classes_ = classes  # a str array: saved without pickle
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError("a classifier needs at least two labels")
        self.temperature_ = 1.0
        counts = np.bincount(y_index)
        n_held = int(round(self.calibration_size * len(y_index)))
        if self.calibration_size and n_held >= MIN_CALIBRATION_DOCS and counts.min() >= 2:
            fit_rows, held_rows = train_test_split(
                np.arange(len(y_index)), test_size=n_held, stratify=y_index, random_state=self.random_state
            )
            self.coef_, self.intercept_ = self._fit_weights(X[fit_rows], y_index[fit_rows], n_classes)
            self.temperature_ = fit_temperature(self.decision_function(X[held_rows]), y_index[held_rows])
        self.coef_, self.intercept_ = self._fit_weights(X, y_index, n_classes)
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        return softmax(self.decision_function(X) / self.temperature_, axis=1)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
