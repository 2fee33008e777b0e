"""Property-based tests: on arbitrary text the cleaner never raises, is idempotent and leaves no
marks; on arbitrary bytes every reader either reads or raises QismError; prediction gives every
document exactly one record, in order."""

import gzip
import io
import re
import tempfile
import time
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from qism import Document, LabelOptions, QismError, ReadOptions, TextCleaner, corpus, load_model, read_source
from qism.clean import DIACRITICS, INVISIBLES, TATWEEL, has_arabic_word, remove_emails, split_hashtags
from qism.corpus import replace_lone_surrogates
from qism.features.boilerplate import edge_segments
from qism.features.hashing import TOKEN_RE
from qism.predict import label_documents

# Arabic letters with their marks, tatweel, presentation forms, invisibles, line breaks and web residue.
ARABIC_SOUP = st.lists(
    st.characters(min_codepoint=0x600, max_codepoint=0x6FF)
    | st.characters(min_codepoint=0xFB50, max_codepoint=0xFEFF)
    | st.sampled_from(
        list("\u0640\u064b\u0651\u200b\u200f\ufeff\x00\r\n\t\x85\u2028 .،؟-<>&#@/:_")
        + ["http://", "www.", "&amp;", "#215;", "الرئيسية\n", "تعليقات القراء\n"]
    )
).map("".join)
ANY_TEXT = st.text() | ARABIC_SOUP
CLEANERS = st.builds(TextCleaner, **{name: st.booleans() for name in TextCleaner().get_params()})
MARKS = set(TATWEEL) | {chr(c) for c in range(0x64B, 0x660)} | {"\u0670"}


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT, CLEANERS)
@example("##0", TextCleaner())  # found by this test: left "#0" for the next pass
@example("@0@0 @a:@b", TextCleaner())  # found by this test: left "@0" and "@b"
@example(
    "\u0671\u0653", TextCleaner(diacritics=False)
)  # found by this test (5,000 examples): ٱ to ا, then ا + madda composed to آ
def test_any_cleaner_never_raises_and_is_idempotent(text, cleaner):
    once = cleaner(text)
    assert cleaner(once) == once


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
def test_default_cleaning_leaves_no_marks_invisibles_or_blank_lines(text):
    cleaned = TextCleaner()(text)
    assert not MARKS & set(cleaned)
    assert not any(ch in cleaned for ch in "\x00\u200b\u200f\ufeff\r\t")
    assert all(line and line == line.strip() and "  " not in line for line in cleaned.split("\n")) or cleaned == ""


def test_the_mark_tables_cover_what_the_property_checks():
    assert TATWEEL == "\u0640" and "\u064b-\u065f" in DIACRITICS and "\x00" in INVISIBLES


# --- readers on arbitrary bytes ---------------------------------------------------------------

READ_OPTIONS = st.builds(ReadOptions, errors=st.sampled_from(["strict", "replace"]), require_labels=st.booleans())
SOME_BYTES = st.binary(max_size=600) | st.lists(
    st.sampled_from(
        [
            b"text,label\n",
            b'"',
            b",",
            b"\n",
            b"\r",
            b"\x00",
            b"\xff",
            b"\xef\xbb\xbf",
            b"\xff\xfe",
            b'{"text": "',
            b'", "label": "',
            b'"}',
            "نص".encode(),
            "نص".encode("cp1256"),
            b"\\ud800",
            b"[",
            b"{",
        ]
    ),
    max_size=40,
).map(b"".join)


def read_all(path: Path, options: ReadOptions, fmt: str | None = None) -> list[Document]:
    """Read a source completely; a QismError is an answer too (empty list), anything else fails the test."""
    try:
        return list(read_source(path, options, fmt))
    except QismError as err:
        assert str(err)
        return []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SOME_BYTES, READ_OPTIONS)
def test_any_bytes_as_an_article_in_a_folder_give_one_document(data, options):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "sports").mkdir()
        (Path(folder) / "sports" / "1.txt").write_bytes(data)
        docs = read_all(Path(folder), options)
        assert [doc.id for doc in docs] == ["sports/1.txt"] or (options.errors == "strict" and not docs)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".txt"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=SOME_BYTES, options=READ_OPTIONS)
def test_any_bytes_as_a_table_jsonl_or_lines_read_or_raise_qism_error(suffix, data, options):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        read_all(path, options, "lines" if suffix == ".txt" else None)
        path = path.with_name(path.name + ".gz") if suffix == ".jsonl" else path
        if suffix == ".jsonl":
            path.write_bytes(
                gzip.compress(data) if data[:1] != b"\x00" else data
            )  # packed, or a file that only says it is
            read_all(path, options)


ENTRY_NAMES = st.lists(st.sampled_from(list("ab/.\\:ن ") + ["..", "C:"]), min_size=1, max_size=8).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SOME_BYTES, st.dictionaries(ENTRY_NAMES.map(lambda name: name + ".txt"), SOME_BYTES, max_size=4), READ_OPTIONS)
def test_any_bytes_or_entries_as_a_zip_read_or_raise_qism_error(raw, entries, options):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.zip"
        path.write_bytes(raw)
        read_all(path, options)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in entries.items():
                archive.writestr(name, content)
        packed = buffer.getvalue()
        for damaged in (packed, packed[: len(packed) // 2], packed[:40] + raw + packed[40:]):
            path.write_bytes(damaged)
            read_all(path, options)


# --- prediction keeps every record ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    return load_model(tiny_model_dir)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(ANY_TEXT | st.sampled_from(["", " ", "\n\t"]), max_size=12), batch_size=st.integers(1, 5))
def test_prediction_gives_every_document_one_record_in_order(tiny_model, texts, batch_size):
    documents = [Document(text=text, id=str(i)) for i, text in enumerate(texts)]
    records = list(label_documents(tiny_model, documents, LabelOptions(top_k=2), batch_size=batch_size))
    assert [record["id"] for record in records] == [doc.id for doc in documents]
    for record, text in zip(records, texts):
        reason = "empty text" if not text.strip() else None if has_arabic_word(text) else "no Arabic words"
        assert record.get("reason") == reason
        assert record["label"] == "unknown" if reason else record["label"] in tiny_model.labels


# --- every pattern applied to user text runs in linear time -----------------------------------

#: Pieces whose long runs hold no match but made a backtracking regex rescan the run from each
#: character (the e-mail and hashtag patterns took 33 s on 200 KB).
RUN_PIECES = st.sampled_from(
    [
        "a",
        "a.",
        "a-",
        "a+",
        "#",
        "@",
        "_",
        "a@",
        "@a",
        "#a",
        ".",
        "-",
        " ",
        "RT ",
        "<a",
        "&a",
        "a:",
        "a (",
        "(a)",
        "a -",
        "www.",
        "http://",
        "\u0628\u064e",
        "\u0628.",
        "\u0628\u0640",
        "\u0628 ",
        "\u0628\u200b",
        "\n",
        "a@b",
        "a.b@",
    ]
)
RUN_ENDS = st.sampled_from(["", "@", "#", "@a", "a@b.c", "#a", " -", ":", "\n"])
RUN_CHARS = 200_000
#: CPU seconds (not wall-clock: the machine may be shared) for one run: the linear patterns take
#: about 0.3 s at most, the quadratic ones took minutes (450 s for `a.` x 100,000 + `@`).
SECONDS_FOR_A_RUN = 5.0


@settings(max_examples=40, deadline=None)
@given(st.lists(RUN_PIECES, min_size=1, max_size=3).map("".join), RUN_ENDS)
@example("a.", "@")
@example("_", "@")
@example("#", "")
def test_cleaning_a_long_run_without_a_match_takes_linear_time(piece, end):
    text = (piece * (RUN_CHARS // len(piece) + 1))[:RUN_CHARS] + end
    for step in (TextCleaner(), TOKEN_RE.findall, edge_segments, replace_lone_surrogates):
        started = time.process_time()
        step(text)
        elapsed = time.process_time() - started
        assert elapsed < SECONDS_FOR_A_RUN, f"{step} took {elapsed:.1f} s on {piece!r} x {RUN_CHARS:,} + {end!r}"


#: The e-mail and hashtag patterns as they were before they were made linear: quadratic on long
#: runs, but the reference for what a short text cleans to.
QUADRATIC_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
QUADRATIC_HASHTAG_RE = re.compile(r"#+(\w+)")
EMAIL_SOUP = st.lists(st.sampled_from(list("ab_.+-@# \n\u0628") + ["a@b.c", "##", "@@", ".+"]), max_size=30).map(
    "".join
)


@settings(max_examples=1000, deadline=None)
@given(EMAIL_SOUP | ANY_TEXT)
@example("a@b.c+d@e.f")  # a match right after a match: the linear pattern alone would leave "+d@e.f"
@example("a@b.c.+x@y.z")
def test_linear_email_and_hashtag_removal_gives_what_the_old_patterns_gave(text):
    assert remove_emails(text) == QUADRATIC_EMAIL_RE.sub(" ", text)
    assert split_hashtags(text) == QUADRATIC_HASHTAG_RE.sub(lambda m: m.group(1).replace("_", " "), text)


# --- streamed files split into the same lines whatever the blocks ------------------------------

LINE_SOUP = st.text(alphabet="ab \r\n\u0628\u20ac\U0001f600\x85\u2028", max_size=60)


@settings(max_examples=300, deadline=None)
@given(LINE_SOUP, st.integers(1, 9), st.integers(0, 60))
def test_streamed_lines_and_bad_byte_offsets_do_not_depend_on_block_boundaries(text, block, bad_at):
    data = text.encode()
    options = ReadOptions(encoding="utf-8")
    with mock.patch.object(corpus.decoding, "_BLOCK_BYTES", block):
        assert list(corpus.stream_lines(io.BytesIO(data), "x", options)) == list(io.StringIO(text, newline=""))
        cut = min(bad_at, len(data))
        while cut and (data[cut] & 0xC0 == 0x80 if cut < len(data) else False):
            cut -= 1  # the bad byte goes between characters
        damaged = data[:cut] + b"\xff" + data[cut:]
        line = len(re.findall("\r\n|\r|\n", data[:cut].decode())) + 1  # what is before the bad byte
        with pytest.raises(QismError, match=f"^x: line {line}: not valid utf-8 at byte {cut:,};"):
            list(corpus.stream_lines(io.BytesIO(damaged), "x", options))
