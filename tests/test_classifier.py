import pickle

import numpy as np
import pytest
from qism import LinearClassifier, TfidfFeaturizer, read_source
from qism.classifier import CLASSIFIERS, fit_temperature


@pytest.fixture(scope="module")
def data(tiny):
    docs = list(read_source(tiny))
    X = TfidfFeaturizer(min_df=1).fit_transform([d.text for d in docs])
    return X, np.array([d.label for d in docs])


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_each_learner_fits_and_gives_probabilities(data, kind):
    X, y = data
    model = LinearClassifier(kind, calibration_size=0).fit(X, y)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert (model.predict(X) == y).mean() > 0.9
    assert model.coef_.shape == (3, X.shape[1]) and model.coef_.dtype == np.float32


def test_binary_problem_has_one_row_per_class(data):
    X, y = data
    keep = y != "economy"
    model = LinearClassifier(calibration_size=0).fit(X[keep], y[keep])
    assert model.coef_.shape[0] == 2
    assert (model.predict(X[keep]) == y[keep]).all()


def test_single_label_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="two labels"):
        LinearClassifier().fit(X, np.array(["a"] * len(y)))


def test_temperature_fits_overconfident_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    decision = rng.normal(size=(2000, 3))
    decision[np.arange(2000), y] += 1.0
    assert fit_temperature(decision * 10, y) == pytest.approx(10 * fit_temperature(decision, y), rel=0.05)


@pytest.mark.parametrize("kind", ["linear_svc", "sgd"])
def test_threads_give_the_same_weights_every_time(data, kind):
    X, y = data
    X = X[np.tile(np.arange(X.shape[0]), 20)]  # enough work for the threads to overlap
    y = np.tile(y, 20)
    fits = [LinearClassifier(kind, calibration_size=0, n_jobs=2).fit(X, y).coef_ for _ in range(4)]
    for coef in fits[1:]:
        np.testing.assert_array_equal(coef, fits[0])


def test_contiguous_weights_follow_coef_and_stay_out_of_saved_state(data):
    X, y = data
    model = LinearClassifier(calibration_size=0).fit(X, y)
    np.testing.assert_array_equal(model.decision_function(X), np.asarray(X @ model.coef_.T) + model.intercept_)
    model.coef_ = model.coef_ * 2  # new weights (as fit sets them) are used, not the copy of the old ones
    np.testing.assert_array_equal(model.decision_function(X), np.asarray(X @ model.coef_.T) + model.intercept_)
    assert "_coef_by_feature" in vars(model)
    assert "_coef_by_feature" not in model.__getstate__()
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.decision_function(X), model.decision_function(X))
