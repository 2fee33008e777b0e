"""The compiled labeling path (training/_native.c) gives what the pure-Python path gives, to the last bit:
the same term counts, the same cleaned text, the same scores and the same written records. Skipped
where the extension was not built (no compiler): then the pure path is the only one."""

import gzip
import io
import json
import re
import zipfile

import numpy as np
import pytest
from conftest import CORPORA, SPORTS
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("qism._native", reason="the C extension was not built")

from qism import clean, load_model
from qism.corpus import Document
from qism.features import hashing, weights
from qism.output import write_records
from qism.predict import label_documents

#: Texts written for these tests: marks, tatweel, every alef, yeh and digit form, web residue, words
#: of one letter, underscores, characters beyond the BMP, a lone surrogate, several lines.
FIXTURE_TEXTS = [
    "",
    "و",
    "في",
    SPORTS,
    "أَعْلَنَ المُنْتَخَبُ الوطنيّ لكـــرة القدم قائمةً من ٢٣ لاعباً؛ إلى آسيا ۱۹ مرة.وكانت",
    "إن الأسهم ٱرتفعت ی ک ى ة في البورصة\n\nالرئيسية\nاقتصاد\nارتفعت الأسهم اليوم بنسبة 3% في بورصة دبي",
    "<p>زار الوزير &amp; الوفد</p> http://example.org/a?b=1 #عاجل_الآن ##وسم @user: RT @a:@b a@b.c+d@e.f",
    "x_y _ __ a1 ١٢ 𝐀𝐁 😀😀 كلمة𝐀 \ud800\ud800 مرحبا",
    "كلمة " * 300 + "\nنهاية",
    "\u200f\u202bنص\u202c\ufeff مع\x00 محارف\x07 خفية\u2066",
]

#: What the fixtures and the generated texts are made of: Arabic letters and marks, digits of three
#: scripts, Latin, punctuation of both scripts, web residue, invisibles and a character beyond the BMP.
ALPHABET = st.sampled_from(
    list("ابتثجحخدذرسشصضطظعغفقكلمنهويءآأإٱىةیک")
    + list("\u064b\u064e\u0650\u0651\u0652\u0670\u0640")
    + list("0123456789٠١٢٣۳")
    + list("abcXYZ_")
    + list(" \n\t.،؛:!?؟#@&<>/;-")
    + ["\u200b", "\u202e", "\ufeff", "\x00", "\xa0", "😀", "𝐀", "\r", "\x85", "\u2028", "\x1c", "\v", "\u3000"]
)


def both_paths(compute):
    """`compute()` with the compiled loops, then with the pure-Python ones."""
    native = compute()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(hashing, "_native", None)
        patched.setattr(clean, "_native", None)
        pure = compute()
    return native, pure


def assert_same_matrix(native, pure):
    assert native.shape == pure.shape and native.dtype == pure.dtype
    assert np.array_equal(native.indptr, pure.indptr)
    assert np.array_equal(native.indices, pure.indices)
    assert np.array_equal(native.data, pure.data)


@pytest.mark.parametrize("ngrams,lead_words,n_buckets", [((1, 2), 50, 2**20), ((1, 1), 0, 97), ((2, 3), 5, 2**24)])
def test_compiled_term_counts_are_the_numpy_counts(ngrams, lead_words, n_buckets):
    native = hashing.word_ngram_counts(FIXTURE_TEXTS, ngrams, lead_words, n_buckets, np.float32)
    pure = hashing.word_ngram_counts_pure(FIXTURE_TEXTS, ngrams, lead_words, n_buckets, np.float32)
    assert_same_matrix(native, pure)
    assert native.sum() > 300  # the fixtures have words to count


def test_counting_straight_into_kept_columns_is_keeping_them_after_counting():
    lookup = np.full(2**20, -1, dtype=np.int32)
    kept = np.arange(0, 2**20, 3)
    lookup[kept] = np.arange(len(kept), dtype=np.int32)
    native = hashing.native_column_counts(FIXTURE_TEXTS, (1, 2), 50, lookup, len(kept), np.float32)
    counted = hashing.word_ngram_counts_pure(FIXTURE_TEXTS, (1, 2), 50, 2**20, np.float32)
    assert_same_matrix(native, weights.kept_columns(counted, lookup, len(kept)))
    assert 0 < native.nnz < counted.nnz


def test_compiled_words_are_the_numpy_words_for_every_character():
    """Each BMP character (and stretches beyond it) between two two-letter words: one word of five
    characters where it is a word character, two words where not."""
    characters = [*range(0xD800), *range(0xE000, 0x10000), *range(0x1D400, 0x1D800), *range(0x1F600, 0x1F650)]
    texts = [f"بب{chr(c)}بب" for c in characters]
    native = hashing.word_ngram_counts(texts, (1, 1), 0, 2**20, np.float32)
    assert_same_matrix(native, hashing.word_ngram_counts_pure(texts, (1, 1), 0, 2**20, np.float32))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(ALPHABET, max_size=80), max_size=6), st.integers(1, 3), st.integers(0, 4))
@example(["ab cd", "ab"], 1, 0)
def test_compiled_term_counts_match_on_any_text(texts, high, lead_words):
    native = hashing.word_ngram_counts(texts, (1, high), lead_words, 1009, np.float64)
    assert_same_matrix(native, hashing.word_ngram_counts_pure(texts, (1, high), lead_words, 1009, np.float64))


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=120), st.sampled_from([{}, {"diacritics": False, "alef": False}, {"digits": False}]))
@example("ٱٓ", {"diacritics": False})
def test_compiled_cleaning_gives_the_regex_cleaning(text, switches):
    cleaner = clean.TextCleaner(**switches)
    native, pure = both_paths(lambda: cleaner(text))
    assert native == pure


@settings(max_examples=500, deadline=None)
@given(st.text(ALPHABET, max_size=120))
@example(" \r\n\r\n a  b \x85\u2028c\x1c\x1dd \t")
@example("ب.ب،ب؛ب:ب!ب?ب؟ب.a.ب")
def test_compiled_line_split_and_punctuation_spacing_give_the_pure_ones(text):
    pure_lines = [line for line in map(clean.collapse_spaces, text.splitlines()) if line]
    assert clean._native.collapsed_lines(text) == pure_lines
    assert clean._native.space_after_punctuation(text) == clean._GLUED_PUNCT_RE.sub(r"\1 ", text)


def test_every_character_step_has_a_compiled_table():
    steps = [clean.remove_diacritics, clean.remove_tatweel, clean.normalize_alef, clean.normalize_digits]
    everything = "".join(map(chr, range(0x10000))).encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
    for step in steps + [clean.TextCleaner()._compiled()[0]]:
        pure = step._delete.sub("", everything) if step._delete else everything
        for old, new in step._replace:
            pure = pure.replace(old, new)
        assert step(everything) == pure
        assert step._table  # the compiled table did it


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from(list("#&;<>!/aZ_0129ب x")), max_size=40))
def test_faster_web_residue_patterns_match_as_the_old_ones(text):
    old_html = re.compile(
        r"</?[A-Za-z!][^<>]{0,500}>|&(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,10});|(?<![\w#&])#\d{2,7};"
    )
    assert clean._HTML_RE.sub("|", text) == old_html.sub("|", text)
    assert clean._HASHTAG_RE.sub("|", text) == re.compile(r"(?<!#)#+(\w+)").sub("|", text)


def labeled_bytes(model, texts: list[str], fmt: str) -> str:
    docs = [Document(text=text, id=str(i)) for i, text in enumerate(texts)]
    out = io.StringIO()
    write_records(label_documents(model, docs), fmt, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def default_model():
    model = load_model()
    model.set_jobs(1)
    return model


def test_default_model_writes_the_same_records_on_both_paths(default_model):
    readable = [text.encode("utf-8", "replace").decode() for text in FIXTURE_TEXTS]  # readers replace lone surrogates
    texts = readable + [t + " " + s for t in readable for s in (SPORTS, "ارتفعت أسعار النفط")]
    for fmt in ("jsonl", "csv"):
        native, pure = both_paths(lambda fmt=fmt: labeled_bytes(default_model, texts, fmt))
        assert native == pure
    native, pure = both_paths(lambda: default_model.predict_proba(texts))
    assert native.tobytes() == pure.tobytes()


def held_out_texts(records: list[tuple[str, str]]) -> list[str]:
    """The texts of the 20% held out by bench/vs_fasttext.py's stratified split (seed 42)."""
    from sklearn.model_selection import train_test_split

    _, test = train_test_split(records, test_size=0.2, random_state=42, stratify=[label for _, label in records])
    return [text for text, _ in test]


def corpus_test_split(name: str) -> list[str]:
    path = CORPORA / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".txt"))
            records = [(archive.read(n).decode("utf-8", "replace"), n.split("/")[-2]) for n in names]
    else:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            records = [(r["text"], r["label"]) for r in map(json.loads, handle)]
    return held_out_texts(records)


@pytest.mark.parametrize("name", ["sanad-khaleej.zip", "ant-v2.1.jsonl.gz"])
def test_corpus_test_splits_get_the_same_labels_and_scores_on_both_paths(default_model, name):
    texts = corpus_test_split(name)
    native, pure = both_paths(lambda: labeled_bytes(default_model, texts, "jsonl"))
    assert native.count("\n") == len(texts) > 5000
    assert native == pure
