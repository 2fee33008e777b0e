"""The library keeps scikit-learn's contract and what the README promises from Python: one text is a
str, estimators refit from scratch, numbers stay numbers, defaults are `qism train`'s, label maps
travel with the model, and configuration mistakes are refused when the configuration is made."""

import numpy as np
import pytest
from conftest import SPORTS, write_label_map
from qism import (
    LabelMap,
    LinearClassifier,
    QismError,
    TextCleaner,
    TfidfFeaturizer,
    TrainConfig,
    build_pipeline,
    evaluate,
    load_model,
    read_source,
    train,
)
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline


@pytest.fixture(scope="module")
def tiny_texts(tiny):
    docs = list(read_source(tiny))
    return [d.text for d in docs], np.array([d.label for d in docs])


def test_a_string_is_one_article(tiny_model_dir):
    model = load_model(tiny_model_dir)
    assert model.predict(SPORTS) == model.predict([SPORTS]) == ["sports"]
    assert model.predict_proba(SPORTS).shape == (1, len(model.labels))
    assert len(model.predict_top(SPORTS, k=2)) == 1


def test_predict_top_keeps_labels_above_the_threshold(tiny_model_dir):
    model = load_model(tiny_model_dir)
    [top] = model.predict_top([SPORTS], k=3)
    [kept] = model.predict_top([SPORTS], k=3, threshold=top[1][1] + 1e-9)
    assert len(top) == 3 and kept == top[:1]
    assert model.predict_top([SPORTS], k=3, threshold=1.0) == [[]]


def test_featurizer_refits_from_scratch(tiny_texts):
    texts, _ = tiny_texts
    big = TfidfFeaturizer().fit(texts * 3)
    small_after_big = clone(big).fit(texts[:4])
    reused = big.fit(texts[:4])  # the same object, fitted again on less data
    np.testing.assert_array_equal(reused.transform(texts).toarray(), small_after_big.transform(texts).toarray())
    grown = TfidfFeaturizer().fit(texts[:4]).fit(texts)
    np.testing.assert_array_equal(
        grown.transform(texts).toarray(), TfidfFeaturizer().fit(texts).transform(texts).toarray()
    )


def test_one_pipeline_through_stratified_folds_and_grid_search(tiny_texts):
    texts, labels = tiny_texts
    texts = np.asarray(texts * 2, dtype=object)
    labels = np.concatenate([labels, labels])
    pipeline = Pipeline([("features", TfidfFeaturizer()), ("classifier", LinearClassifier())])
    for fit_rows, check_rows in StratifiedKFold(3, shuffle=True, random_state=0).split(texts, labels):
        pipeline.fit(texts[fit_rows], labels[fit_rows])
        assert pipeline.score(texts[check_rows], labels[check_rows]) > 0.5
    search = GridSearchCV(pipeline, {"classifier__C": [0.5, 2.0]}, cv=2).fit(texts, labels)
    assert search.best_params_["classifier__C"] in (0.5, 2.0)


def test_integer_labels_stay_integers(tiny_texts):
    texts, labels = tiny_texts
    numbers = np.unique(labels, return_inverse=True)[1] * 4 + 2  # 2, 6, 10: string order would differ
    pipeline = Pipeline([("features", TfidfFeaturizer()), ("classifier", LinearClassifier())]).fit(texts, numbers)
    assert pipeline.classes_.tolist() == [2, 6, 10]
    assert pipeline.predict(texts[:3]).dtype.kind == "i"
    assert pipeline.score(texts, numbers) > 0.9


def test_the_estimators_defaults_are_qism_trains():
    made = build_pipeline(TrainConfig()).get_params()
    bare = Pipeline([("features", TfidfFeaturizer()), ("classifier", LinearClassifier())]).get_params()
    for key in (
        "classifier__kind",
        "classifier__C",
        "classifier__class_weight",
        "classifier__nb_scaling",
        "classifier__random_state",
        "features__word_ngrams",
        "features__lead_words",
        "features__boilerplate_min_docs",
        "features__n_buckets",
        "features__min_df",
    ):
        assert made[key] == bare[key], key
    assert made["features__cleaner"].get_params() == TextCleaner().get_params()
    assert bare["features__cleaner"] is None  # None cleans with the default TextCleaner


@pytest.mark.parametrize(
    "options, option",
    [
        ({"C": 0}, "--C"),
        ({"C": float("nan")}, "--C"),
        ({"nb_scaling": -1}, "--nb-scaling"),
        ({"word_ngrams": [3, 1]}, "--word-ngrams"),
        ({"word_ngrams": (1, 10**9)}, "--word-ngrams"),
        ({"seed": -1}, "--seed"),
        ({"seed": 2**32}, "--seed"),
        ({"min_df": 0}, "--min-df"),
        ({"max_features": -5}, "--max-features"),
        ({"boilerplate_min_docs": -1}, "--boilerplate-min-docs"),
        ({"dedupe": "yes"}, "dedupe"),
        ({"lead_words": True}, "--lead-words"),
        ({"test_size": 1.0}, "--test-size"),
    ],
)
def test_bad_values_are_refused_when_the_configuration_is_made(options, option):
    with pytest.raises(QismError, match=option):
        TrainConfig(**options)


def test_in_range_values_are_kept(tmp_path):
    config = TrainConfig(C=0.25, word_ngrams=[1, 3], seed=2**32 - 1, max_features=10, boilerplate_min_docs=0)
    assert (config.C, config.word_ngrams, config.seed) == (0.25, (1, 3), 2**32 - 1)


def test_one_label_map_trains_twice_with_the_same_counts(tiny, tmp_path):
    mapping = LabelMap.load(write_label_map(tmp_path))
    first = train([tiny], TrainConfig(test_size=0), label_map=mapping)
    second = train([tiny], TrainConfig(test_size=0), label_map=mapping)
    assert first.card["unmapped_labels"] == second.card["unmapped_labels"] == {"tiny:security": 6}
    assert first.card["dropped"]["unmapped_label"] == second.card["dropped"]["unmapped_label"] == 6


def test_a_model_keeps_its_label_map_and_evaluation_applies_it(tiny, tmp_path):
    mapping = LabelMap.load(write_label_map(tmp_path))
    train([tiny], TrainConfig(test_size=0), label_map=mapping).save(tmp_path / "m")
    model = load_model(tmp_path / "m")
    assert LabelMap.from_dict(model.card["label_map"]) == mapping
    raw = tmp_path / "copy" / "tiny"  # the corpus as it comes, raw labels and file name (the map names it)
    for label in ("sports", "economy"):
        (raw / label).mkdir(parents=True)
        for i, path in enumerate(sorted((tiny / label).glob("*.txt"))):
            (raw / label / f"{i}.txt").write_bytes(path.read_bytes())
    scores = evaluate(model, [raw])
    assert scores["accuracy"] > 0.9 and scores["labels_unknown_to_model"] == []


def test_evaluating_on_labels_the_model_does_not_know_is_refused(tiny_model_dir, tmp_path):
    other = tmp_path / "other"
    for label in ("weather", "traffic"):
        (other / label).mkdir(parents=True)
        (other / label / "1.txt").write_text(SPORTS, encoding="utf-8")
    with pytest.raises(QismError, match="labels the model does not know"):
        evaluate(load_model(tiny_model_dir), [other])


def test_macro_f1_averages_over_the_labels_the_data_has(tiny_model_dir, tiny, tmp_path):
    sports = tmp_path / "only" / "sports"  # one gold label; economy articles filed there are predicted economy
    sports.mkdir(parents=True)
    for label in ("sports", "economy"):
        for path in (tiny / label).glob("*.txt"):
            (sports / f"{label}-{path.name}").write_bytes(path.read_bytes())
    scores = evaluate(load_model(tiny_model_dir), [sports.parent])
    assert scores["per_label"]["economy"]["support"] == 0 and scores["confusion_matrix"]["rows_true_columns_predicted"]
    assert scores["macro_f1_labels"] == 1
    assert scores["macro_f1"] == pytest.approx(scores["per_label"]["sports"]["f1"])
