import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qism import LinearClassifier, TextCleaner, TfidfFeaturizer, read_source
from qism.features import pool
from qism.features.hashing import TOKEN_RE, word_hashes
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

DOCS = ["قال الوزير إن القمة العربية", "فاز الفريق بالمباراة", "القمة العربية في الرياض", "الفريق فاز بالكأس"]


def test_rows_are_l2_normalized_float32():
    X = TfidfFeaturizer(min_df=1).fit_transform(DOCS)
    assert X.dtype == np.float32 and X.shape[0] == 4
    np.testing.assert_allclose(np.sqrt(X.multiply(X).sum(axis=1)).A.ravel(), 1, rtol=1e-5)


def test_min_df_and_max_features_prune_terms():
    assert TfidfFeaturizer(min_df=2).fit(DOCS).n_features_out_ < TfidfFeaturizer(min_df=1).fit(DOCS).n_features_out_
    assert TfidfFeaturizer(min_df=1, max_features=3).fit(DOCS).n_features_out_ == 3


def test_word_bigrams_and_char_ngrams_are_terms():
    terms = TfidfFeaturizer(cleaner="passthrough", word_ngrams=(1, 2), char_ngrams=(2, 3)).analyze("القمة العربية")
    assert "القمة العربية" in terms and "# ا" in terms and "القمة" in terms


def test_cleaner_is_applied_first():
    featurizer = TfidfFeaturizer(cleaner=TextCleaner(), lead_words=0)
    assert featurizer.analyze("أَحمد") == ["احمد"]


@pytest.mark.parametrize("fork", [True, False], ids=["forked workers", "joblib workers"])
def test_parallel_and_serial_features_are_identical(tiny, monkeypatch, fork):
    monkeypatch.setattr(pool, "FORK_WORKERS", fork and pool.FORK_WORKERS)
    pools = []

    class RecordedPool(pool.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs["mp_context"].get_start_method())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pool, "ProcessPoolExecutor", RecordedPool)
    stories = [doc.text for doc in read_source(tiny)] * 250  # several chunks, each story ending in its own line
    texts = [f"{story}\nالخبر رقم {i} من الأرشيف" for i, story in enumerate(stories)]
    serial = TfidfFeaturizer(n_jobs=1, boilerplate_min_docs=5, lead_words=20)
    parallel = TfidfFeaturizer(n_jobs=2, boilerplate_min_docs=5, lead_words=20)
    assert (serial.fit_transform(texts) != parallel.fit_transform(texts)).nnz == 0
    assert len(parallel.boilerplate_) and np.array_equal(serial.boilerplate_, parallel.boilerplate_)
    unseen = [text[::-1] for text in texts]
    assert (serial.transform(unseen) != parallel.transform(unseen)).nnz == 0
    assert pools == (["fork"] * 3 if pool.FORK_WORKERS else [])  # clean, count, transform


def test_lead_words_are_terms_of_their_own():
    plain = TfidfFeaturizer(min_df=1, lead_words=0).fit(DOCS)
    lead = TfidfFeaturizer(min_df=1, lead_words=2).fit(DOCS)
    terms = lead.analyze(DOCS[1])
    assert "^فاز الفريق" in terms and "^فاز" in terms and "^بالمباراه" not in terms
    assert set(terms) - {t for t in terms if t.startswith("^")} == set(plain.analyze(DOCS[1]))
    row = lead.transform([DOCS[1]])
    assert set(lead.term_columns(terms)) == set(row.indices)
    assert row.nnz > plain.transform([DOCS[1]]).nnz


def test_term_columns_match_transform():
    featurizer = TfidfFeaturizer(min_df=1, lead_words=0).fit(DOCS)
    row = featurizer.transform(["الفريق فاز"])
    columns = featurizer.term_columns(["الفريق", "فاز", "الفريق فاز"])
    assert set(columns) == set(row.indices)


#: Fitted on texts of these few words, so most terms of the generated texts keep a column.
WORDS = ["فاز", "الفريق", "بالمباراة", "ab_1", "٢٣", "😀x", "القمة"]
EXPLAINED = TfidfFeaturizer(min_df=1, lead_words=3, word_ngrams=(1, 3), char_ngrams=(2, 3), n_buckets=2**10).fit(
    [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS + ["a", " ", "\n", "-"]), max_size=30).map(" ".join))
def test_the_columns_of_an_articles_terms_are_those_transform_fills(text):
    columns = EXPLAINED.term_columns(EXPLAINED.analyze(text))
    assert set(columns[columns >= 0]) == set(EXPLAINED.transform([text]).indices)


def test_sklearn_conventions_clone_and_grid_search(tiny):
    docs = list(read_source(tiny))
    pipeline = Pipeline(
        [
            ("features", TfidfFeaturizer(cleaner=TextCleaner(), min_df=1)),
            ("classifier", LinearClassifier(calibration_size=0)),
        ]
    )
    assert clone(pipeline).get_params()["features__cleaner__alef"] is True
    search = GridSearchCV(pipeline, {"features__word_ngrams": [(1, 1), (1, 2)], "classifier__C": [0.5, 1.0]}, cv=2)
    search.fit([d.text for d in docs], [d.label for d in docs])
    assert search.best_score_ > 0.5


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("ابت ثج_1 \n")), max_size=4))
def test_vectorized_words_are_the_regex_words(texts):
    docs, hashes = word_hashes(texts)
    expected = [(i, word) for i, text in enumerate(texts) for word in TOKEN_RE.findall(text)]
    assert docs.tolist() == [i for i, _ in expected]
    hash_of = {}
    for (_, word), value in zip(expected, hashes.tolist()):
        assert hash_of.setdefault(word, value) == value  # a word hashes the same wherever it stands
    assert len(set(hash_of.values())) == len(hash_of)  # and distinct words apart (no collision here)


def test_char_ngrams_add_columns_and_explanations_mark_them():
    texts = ["القمة العربية في الرياض", "مباراة الفريق في الدوري", "القمة الاقتصادية العالمية"]
    words_only = TfidfFeaturizer(min_df=1, lead_words=0).fit(texts)
    with_chars = TfidfFeaturizer(min_df=1, lead_words=0, char_ngrams=(2, 4)).fit(texts)
    assert with_chars.n_features_out_ > words_only.n_features_out_
    terms = with_chars.analyze(texts[0])
    char_terms = [term for term in terms if term.startswith("#")]
    assert "# ال" in char_terms and len(char_terms) > len(terms) / 2
    assert (with_chars.term_columns(char_terms) >= 0).all()  # every char term of a training text has its column
    row = with_chars.transform([texts[0]])
    assert set(with_chars.term_columns(terms)) >= set(row.indices)
