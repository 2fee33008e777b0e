"""The training options the benchmarks chose: learned boilerplate, class and source balancing,
per-source scores."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qism import LinearClassifier, QismError, TfidfFeaturizer, TrainConfig, load_model, read_source, train
from qism.card import card_markdown
from qism.classifier import classifier_for, outlet_label_masks
from qism.cli import app
from qism.features.boilerplate import (
    edge_segments,
    learn_edge_boilerplate,
    peel_edge_boilerplate,
    segment_key,
    strip_edge_boilerplate,
)
from qism.trainer import Prepared, fit, outlet_balancing_weights
from typer.testing import CliRunner

NOTICE = "حمل تطبيق الموقع الآن لتصلك الأخبار العاجلة على هاتفك"


def test_edge_segments_are_first_and_last_sentences():
    text = "الأول. الثاني. الثالث\nالرابع. الخامس"
    assert edge_segments(text) == ["الأول.", "الثاني.", "الرابع.", "الخامس"]


def test_recurring_edge_sentences_are_learned_and_stripped():
    texts = [f"خبر رقم {i} عن الاقتصاد.\n{NOTICE}" for i in range(6)]
    keys = learn_edge_boilerplate(texts, min_docs=5)
    assert len(keys) == 1 and keys.dtype == np.uint64
    assert strip_edge_boilerplate(texts[0], frozenset(int(k) for k in keys)) == "خبر رقم 0 عن الاقتصاد."
    assert len(learn_edge_boilerplate(texts, min_docs=7)) == 0


def test_featurizer_leaves_learned_boilerplate_out_of_the_terms():
    texts = [f"مباراة رقم {i} في الدوري.\n{NOTICE}" for i in range(6)]
    plain = TfidfFeaturizer(min_df=1, boilerplate_min_docs=0).fit(texts)
    learned = TfidfFeaturizer(min_df=1, boilerplate_min_docs=5).fit(texts)
    assert "تطبيق" in plain.analyze(texts[0])
    assert "تطبيق" not in learned.analyze(texts[0]) and "الدوري" in learned.analyze(texts[0])
    assert learned.n_features_out_ < plain.n_features_out_


def test_source_balancing_gives_each_source_the_same_say_within_a_label():
    labels = np.array(["a", "a", "a", "a", "b", "b"])
    origins = np.array(["x", "x", "x", "y", "x", "y"])
    weights = outlet_balancing_weights(labels, origins)
    assert weights[:3].sum() == pytest.approx(weights[3])
    assert weights.sum() == pytest.approx(len(labels))


def test_outlet_label_masks_leave_out_sources_without_the_label():
    # outlet x has sections a and b, outlet y has a and c, file z holds only b articles
    y_index = np.array([0] * 5 + [1] * 5 + [0] * 5 + [2] * 5 + [1] * 3)
    sources = np.array(["x"] * 10 + ["y"] * 10 + ["z"] * 3)
    masks = outlet_label_masks(y_index, 3, sources)
    assert masks.shape == (3, 23)
    assert masks[0].all()  # both outlets use a
    assert not masks[1, 10:20].any() and masks[1, :10].all()  # y has no b section: not against b
    assert not masks[2, :10].any() and masks[2, 10:].all()  # x has no c section; z (one label) always counts
    lonely = outlet_label_masks(np.array([0] * 5 + [1] * 5), 2, np.array(["x"] * 5 + ["y"] * 5))
    assert lonely.all()  # a file per label: every document still counts


def test_outlet_label_sets_change_only_multi_source_fits(tiny):
    docs = list(read_source(tiny))
    X = TfidfFeaturizer(min_df=1).fit_transform([d.text for d in docs] * 2)
    labels = np.array([d.label for d in docs] * 2)
    economy_free = np.array(["x"] * len(docs) + ["y"] * len(docs), dtype=object)
    economy_free[len(docs) :][labels[len(docs) :] == "economy"] = "x"  # outlet y has no economy section

    def coef(outlet_label_sets, sources):
        return (
            LinearClassifier("sgd", calibration_size=0, outlet_label_sets=outlet_label_sets)
            .fit(X, labels, outlets=sources)
            .coef_
        )

    assert not np.array_equal(coef(True, economy_free), coef(False, economy_free))
    one_source = np.array(["x"] * X.shape[0], dtype=object)
    assert np.array_equal(coef(True, one_source), coef(False, one_source))


def test_class_weight_balanced_favours_a_rare_label(tiny):
    docs = list(read_source(tiny))
    texts = [d.text for d in docs if d.label != "economy"] + [d.text for d in docs if d.label == "economy"][:2]
    labels = [d.label for d in docs if d.label != "economy"] + ["economy"] * 2
    X = TfidfFeaturizer(min_df=1).fit_transform(texts)
    plain = LinearClassifier("linear_svc", class_weight=None, calibration_size=0).fit(X, labels)
    balanced = LinearClassifier("linear_svc", class_weight="balanced", calibration_size=0).fit(X, labels)
    economy = list(plain.classes_).index("economy")
    assert balanced.intercept_[economy] > plain.intercept_[economy]


def test_label_sets_for_some_labels_only_and_with_a_weight():
    y_index = np.array([0] * 5 + [1] * 5 + [0] * 5 + [2] * 5)
    outlets = np.array(["x"] * 10 + ["y"] * 10)
    masks = outlet_label_masks(y_index, 3, outlets, only=[2], weight=0.25)
    assert masks[0].all() and masks[1].all()  # b is not named: y still counts against it
    assert (masks[2, :10] == 0.25).all() and masks[2, 10:].all()  # x has no c: weak evidence against c


def test_label_set_labels_change_a_two_outlet_fit_and_survive_saving(two_outlets, tmp_path):
    """On two outlets, one without a security section, naming security changes the weights (on one
    outlet it would change nothing), a weight between 0 and 1 changes them again, and both survive saving."""
    base = {"classifier": "linear_svc", "min_df": 1, "test_size": 0}
    config = TrainConfig(**base, label_set_labels=["security"], label_set_weight=0.1)
    classifier = classifier_for(config)
    assert (classifier.outlet_label_sets, classifier.label_sets_only, classifier.label_sets_weight) == (
        True,
        ("security",),
        0.1,
    )

    def coef(options):
        return train([two_outlets], TrainConfig(**base, **options), n_jobs=1).pipeline.named_steps["classifier"].coef_

    plain, left_out = coef({}), coef({"label_set_labels": ["security"]})
    assert np.abs(left_out - plain).max() > 0.01 and not np.array_equal(
        coef({"label_set_labels": ["security"], "label_set_weight": 0.1}), left_out
    )
    model = train([two_outlets], config, n_jobs=1)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m").pipeline.named_steps["classifier"]
    assert tuple(loaded.label_sets_only) == ("security",) and loaded.label_sets_weight == 0.1
    assert np.array_equal(loaded.coef_, model.pipeline.named_steps["classifier"].coef_)
    for bad in ({"label_set_weight": 2}, {"label_set_labels": "security"}):
        with pytest.raises(QismError, match="label_set"):
            TrainConfig(**bad)


def test_per_outlet_scores_in_the_card_and_sample_weights_reach_the_learner(tiny, monkeypatch):
    docs = list(read_source(tiny))
    # outlet "one" has every article, outlet "two" only the sports ones: balancing must weigh them apart
    texts = [d.text for d in docs] + [d.text + " " for d in docs if d.label == "sports"]
    labels = [d.label for d in docs] + [d.label for d in docs if d.label == "sports"]
    outlets = ["one"] * len(docs) + ["two"] * (len(texts) - len(docs))
    received = []
    original = LinearClassifier.fit
    monkeypatch.setattr(
        LinearClassifier,
        "fit",
        lambda self, X, y, sample_weight=None, outlets=None: (
            received.append((list(y), sample_weight)) or original(self, X, y, sample_weight, outlets)
        ),
    )
    fitted = fit(Prepared(texts, labels, [], {}, outlets=outlets), TrainConfig(test_size=0.3, balance_outlets=True))
    pipeline, scores = fitted.pipeline, fitted.scores
    y, weights = received[0]
    assert weights is not None and len(weights) == len(y)
    assert len(set(np.round(weights, 6))) > 1  # sports articles of "two" weigh apart from the others
    assert set(scores["by_outlet"]) == {"one", "two"}
    assert sum(row["documents"] for row in scores["by_outlet"].values()) == scores["documents"]
    for row in scores["by_outlet"].values():  # F1 per label too, over the labels the outlet has
        assert set(row["f1"]) <= set(pipeline.classes_)
        assert row["macro_f1"] == pytest.approx(sum(row["f1"].values()) / len(row["f1"]))


def test_cli_training_options_reach_the_card(tiny, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(tiny),
            "--out",
            str(tmp_path / "m"),
            "--min-df",
            "1",
            "--json",
            "--class-weight",
            "none",
            "--boilerplate-min-docs",
            "0",
            "--balance-outlets",
            "--classifier",
            "linear_svc",
            "--C",
            "0.5",
            "--outlet-label-sets",
            "--lead-words",
            "30",
        ],
    )
    config = json.loads(result.output)["config"]
    assert (config["class_weight"], config["boilerplate_min_docs"], config["balance_outlets"]) == (None, 0, True)
    assert config["outlet_label_sets"] is True and config["lead_words"] == 30
    assert (config["classifier"], config["C"]) == ("linear_svc", 0.5)


def test_outlet_from_jsonl_is_the_origin(tmp_path):
    path = tmp_path / "ant.jsonl"
    rows = [
        {"text": f"نص رقم {i} عن الرياضة والاقتصاد", "label": "ab"[i % 2], "source": "BBC" if i < 10 else "CNN"}
        for i in range(20)
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    model = train([path], TrainConfig(min_df=1, test_size=0.5))
    assert set(model.card["scores"]["by_outlet"]) == {"BBC", "CNN"}
    assert "Held-out scores per outlet" in card_markdown(model.card)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["خبر عن الاقتصاد.", NOTICE, "", "سطر طويل " * 300, "جملة. أخرى؟", "سؤال? نعم! لا؟ بل.", "!", "? ."]
        ),
        max_size=8,
    ),
    st.sampled_from(["\n", " "]),
)
def test_quick_edge_check_agrees_with_peeling_every_segment(pieces, separator):
    text = separator.join(pieces)
    keys = frozenset(segment_key(s) for s in (NOTICE, "خبر عن الاقتصاد."))
    assert strip_edge_boilerplate(text, keys) == peel_edge_boilerplate(text, keys)


def test_nb_log_count_ratios_favour_a_labels_own_words():
    import scipy.sparse as sp
    from qism.classifier import nb_log_count_ratios

    X = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1]], dtype=np.float32))
    ratios = nb_log_count_ratios(X, np.array([0, 0, 1, 1]), 2, alpha=1.0)
    assert ratios[0, 0] > 0 > ratios[0, 1] and ratios[1, 1] > 0 > ratios[1, 0]
    assert ratios[0, 2] == pytest.approx(0, abs=1e-6)  # a word both labels use says nothing


@pytest.mark.parametrize("kind", ["sgd", "linear_svc"])
def test_nb_scaling_is_folded_into_plain_weights(tiny, kind):
    docs = list(read_source(tiny))
    X = TfidfFeaturizer(min_df=1).fit_transform([d.text for d in docs])
    y = [d.label for d in docs]
    plain = LinearClassifier(kind, nb_scaling=0, calibration_size=0).fit(X, y)
    scaled = LinearClassifier(kind, nb_scaling=1.0, calibration_size=0).fit(X, y)
    assert scaled.coef_.shape == plain.coef_.shape and not np.allclose(scaled.coef_, plain.coef_)
    assert (scaled.predict(X) == np.array(y)).mean() > 0.9


def test_cli_nb_and_class_scaling_options(tiny, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(tiny),
            "--out",
            str(tmp_path / "m"),
            "--min-df",
            "1",
            "--json",
            "--nb-scaling",
            "0",
            "--class-scaling",
        ],
    )
    config = json.loads(result.output)["config"]
    assert (config["nb_scaling"], config["class_scaling"]) == (0, True)
