import json

import numpy as np
import pytest
from conftest import SAMPLE
from qism import LinearClassifier, TrainConfig, train
from qism.classifier import fit_class_scaling, fit_temperature
from qism.cli import app
from qism.scores import accuracy_by_coverage, expected_calibration_error, reliability, threshold_for_coverage
from scipy.special import log_softmax, softmax
from sklearn.datasets import make_classification
from typer.testing import CliRunner


def log_loss(logits, y):
    return -log_softmax(logits, axis=1)[np.arange(len(y)), y].mean()


def test_class_scaling_repairs_what_one_temperature_cannot():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, size=(4000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(true_logits, axis=1)])
    decisions = true_logits * [4.0, 1.0, 0.5] + [1.0, 0.0, -0.5]  # over-confident in class 0, timid in 2
    held, test = slice(0, 2000), slice(2000, None)
    t = fit_temperature(decisions[held], y[held])
    scale, bias = fit_class_scaling(decisions[held] / t, y[held])
    tempered, scaled = decisions[test] / t, decisions[test] / t * scale + bias
    assert log_loss(scaled, y[test]) < log_loss(tempered, y[test]) - 0.02
    assert expected_calibration_error(softmax(scaled, axis=1), y[test]) < expected_calibration_error(
        softmax(tempered, axis=1), y[test]
    )
    assert log_loss(scaled, y[test]) == pytest.approx(log_loss(true_logits[test], y[test]), abs=0.02)


def test_class_scaling_stays_at_identity_when_temperature_is_enough():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, size=(3000, 4))
    y = np.array([rng.choice(4, p=p) for p in softmax(logits, axis=1)])
    scale, bias = fit_class_scaling(logits, y)
    np.testing.assert_allclose(scale, 1, atol=0.1)
    np.testing.assert_allclose(bias, 0, atol=0.1)


def test_calibrated_classifier_predicts_its_most_probable_label():
    X, y = make_classification(n_samples=1500, n_features=30, n_informative=10, n_classes=4, random_state=0)
    model = LinearClassifier(calibration_size=0.2).fit(X, y.astype(str))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert (model.predict(X) == model.classes_[proba.argmax(axis=1)]).all()
    assert model.temperature_ != 1.0 and model.coef_.dtype == np.float32


def test_reliability_bins_add_up_to_the_calibration_error():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    bins = reliability(proba, y, bins=5)
    assert sum(b["documents"] for b in bins) == 4
    # bins: {0.6} right, {0.7} right, {0.8, 0.9} half right
    assert expected_calibration_error(proba, y, bins=5) == pytest.approx((0.4 + 0.3 + 2 * 0.35) / 4)


def test_accuracy_by_coverage_trades_coverage_for_accuracy():
    confidence = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.52])
    proba = np.column_stack([confidence, 1 - confidence])
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])  # the four least confident are wrong
    rows = accuracy_by_coverage(proba, y, coverages=(1.0, 0.9, 0.6))
    assert [row["coverage"] for row in rows] == [1.0, 0.9, 0.6]
    assert [row["accuracy"] for row in rows] == pytest.approx([0.6, 6 / 9, 1.0])
    assert rows[2]["threshold"] == 0.7 and rows[0]["threshold"] == 0.52
    assert threshold_for_coverage(np.array([0.6666, 0.2]), 0.5) == 0.666  # rounded down: still keeps 50%


def test_card_and_cli_show_calibration_and_thresholds(tmp_path):
    model = train([SAMPLE], TrainConfig(min_df=1, test_size=0.3))
    model.save(tmp_path / "m")
    scores = model.card["scores"]
    assert 0 < scores["expected_calibration_error"] < 0.35  # 34 held-out articles: a loose but real bound
    assert [row["target_coverage"] for row in scores["by_threshold"]] == [1.0, 0.95, 0.9, 0.8, 0.7, 0.5]
    card = (tmp_path / "m" / "card.md").read_text(encoding="utf-8")
    assert "expected calibration error" in card and "| threshold | coverage | accuracy |" in card
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "m"), str(SAMPLE)])
    assert result.exit_code == 0 and "threshold  coverage  accuracy" in result.stdout
    rows = json.loads(CliRunner().invoke(app, ["evaluate", str(tmp_path / "m"), str(SAMPLE), "--json"]).stdout)[
        "by_threshold"
    ]
    assert rows[-1]["accuracy"] >= rows[0]["accuracy"]  # the surest half is labeled at least as well as all


def _many_articles(tiny, n_per_label=400, seed=0):
    """Articles made of random draws from each tiny label's words: enough for calibration to run."""
    from qism import read_source

    rng = np.random.default_rng(seed)
    words = {}
    for doc in read_source(tiny):
        words.setdefault(doc.label, []).extend(doc.text.split())
    shared = [w for ws in words.values() for w in ws]
    texts, labels = [], []
    for label, own in words.items():
        for _ in range(n_per_label):
            texts.append(" ".join(rng.choice(own, 6).tolist() + rng.choice(shared, 6).tolist()))
            labels.append(label)
    return texts, np.array(labels)


def test_class_scaling_runs_on_a_corpus_large_enough_to_calibrate(tiny):
    from qism import TfidfFeaturizer

    texts, labels = _many_articles(tiny)
    X = TfidfFeaturizer().fit_transform(texts)
    tempered = LinearClassifier("linear_svc", class_weight=None).fit(X, labels)
    scaled = LinearClassifier("linear_svc", class_weight=None, class_scaling=True).fit(X, labels)
    assert tempered.temperature_ != 1.0  # 120 held-out articles: calibration ran
    assert scaled.temperature_ == tempered.temperature_
    assert not np.allclose(scaled.coef_, tempered.coef_)  # per-label scales were fitted and folded in
    np.testing.assert_allclose(scaled.predict_proba(X).sum(axis=1), 1, rtol=1e-5)
