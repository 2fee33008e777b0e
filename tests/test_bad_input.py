"""Corpora and inputs in every shape they arrive in: each is read, handled and reported, or refused
with one line that names the file and the place. See tests/README.md for the table of cases."""

import csv
import gzip
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import ECONOMY, FIXTURES, SPORTS, assert_user_error, run
from qism import QismError, ReadOptions, TrainConfig, clean_text, corpus, load_model, read_source, train
from qism.features import MAX_ARTICLE_CHARS

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 8


def write_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    """A folder of files, text written as UTF-8."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def write_zip(path: Path, entries: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return path


def tiny_plus(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    """The tiny corpus (3 labels x 6 articles) with extra files."""
    root = tmp_path / "corpus"
    for article in (FIXTURES / "tiny").rglob("*.txt"):
        write_tree(root, {article.relative_to(FIXTURES / "tiny").as_posix(): article.read_bytes()})
    return write_tree(root, files)


def train_card(source, **config) -> dict:
    return train([source], TrainConfig(test_size=0, min_df=1, **config)).card


# --- encodings --------------------------------------------------------------------------------

ENCODED = {
    "utf-8": SPORTS.encode("utf-8"),
    "utf-8 with BOM": SPORTS.encode("utf-8-sig"),
    "utf-16-le with BOM": SPORTS.encode("utf-16"),
    "utf-16-be with BOM": b"\xfe\xff" + SPORTS.encode("utf-16-be"),
    "windows-1256": SPORTS.encode("cp1256"),
}


@pytest.mark.parametrize("encoding", ENCODED)
def test_encodings_are_detected_in_every_format(tmp_path, encoding):
    article = ENCODED[encoding]
    bom, body = (article[:3], article[3:]) if encoding == "utf-8 with BOM" else (b"", article)
    if "utf-16" in encoding:
        codec = "utf-16-le" if "le" in encoding else "utf-16-be"
        bom, body = article[:2], article[2:]
        table = bom + "text,label\n".encode(codec) + body + ",sports\n".encode(codec)
        jsonl = bom + json.dumps({"text": SPORTS, "label": "sports"}, ensure_ascii=False).encode(codec)
    else:
        table = bom + b"text,label\n" + body + b",sports\n"
        jsonl = bom + b'{"text": "' + body + b'", "label": "sports"}\n'
    write_tree(tmp_path / "folder", {"sports/1.txt": article})
    (tmp_path / "t.csv").write_bytes(table)
    (tmp_path / "t.jsonl").write_bytes(jsonl)
    for source in ("folder", "t.csv", "t.jsonl"):
        [doc] = read_source(tmp_path / source)
        assert (doc.text, doc.label) == (SPORTS, "sports"), source


def test_named_encoding_is_used_and_a_wrong_or_unknown_one_is_explained(tmp_path):
    write_tree(tmp_path / "c", {"sports/1.txt": SPORTS.encode("cp1256")})
    [doc] = read_source(tmp_path / "c", ReadOptions(encoding="cp1256"))
    assert doc.text == SPORTS
    with pytest.raises(QismError, match=r"sports/1.txt: line 1: not valid utf-8 at byte 0; name the encoding"):
        list(read_source(tmp_path / "c", ReadOptions(encoding="utf-8")))
    with pytest.raises(QismError, match="unknown encoding 'klingon'"):
        list(read_source(tmp_path / "c", ReadOptions(encoding="klingon")))


def damaged_utf8(bad_after: int = 150) -> tuple[bytes, int]:
    """Arabic UTF-8 with one byte that is not UTF-8 (damage, not another encoding), and its offset."""
    text = (SPORTS + " ") * 20
    head = text[:bad_after].encode()
    return head + b"\xff" + text[bad_after:].encode(), len(head)


def test_undecodable_byte_is_named_by_file_and_offset_in_every_format(tmp_path):
    body, at = damaged_utf8()
    write_tree(tmp_path / "folder", {"sports/1.txt": body})
    header, first_record = b"text,label\n", b'{"text": "a", "label": "b"}\n{"text": "'
    (tmp_path / "t.csv").write_bytes(header + body + b",sports\n")
    (tmp_path / "t.jsonl").write_bytes(first_record + body + b'", "label": "b"}\n')
    cases = {
        "folder": f"sports/1.txt: line 1: not valid utf-8 at byte {at:,}; name the encoding with --encoding, "
        "or use --errors replace",
        "t.csv": f"t.csv: line 2: not valid utf-8 at byte {len(header) + at:,}",
        "t.jsonl": f"t.jsonl: line 2: not valid utf-8 at byte {len(first_record) + at:,}",
    }
    for source, message in cases.items():
        with pytest.raises(QismError, match=message):
            list(read_source(tmp_path / source))


def test_errors_replace_reads_and_counts_replaced_characters(tmp_path, tiny_model_dir):
    corpus_dir = tiny_plus(tmp_path, {"sports/bad.txt": damaged_utf8()[0]})
    [bad] = [d for d in read_source(corpus_dir, ReadOptions(errors="replace")) if d.id == "sports/bad.txt"]
    assert bad.text.count("\ufffd") == 1 and SPORTS in bad.text
    card = train([corpus_dir], TrainConfig(test_size=0, min_df=1), read_options=ReadOptions(errors="replace")).card
    assert card["repaired"]["replaced_characters"] == 1
    assert_user_error(run("evaluate", tiny_model_dir, corpus_dir), "bad.txt: line 1: not valid utf-8 at byte")
    assert (
        json.loads(run("evaluate", tiny_model_dir, corpus_dir, "--errors", "replace", "--json").output)["documents"]
        == 19
    )
    with pytest.raises(QismError, match="--errors must be one of strict, replace"):
        ReadOptions(errors="ignore")


def test_mixed_line_endings_and_nul_bytes_are_read(tmp_path):
    mixed = f"{SPORTS}\r\nسطر ثان\rسطر ثالث\nسطر\x00 رابع"
    write_tree(tmp_path / "folder", {"sports/1.txt": mixed})
    (tmp_path / "t.csv").write_bytes(f'text,label\r\n"{SPORTS}\rسطر",sports\nنص\x00 آخر,economy\r'.encode())
    (tmp_path / "t.jsonl").write_bytes(
        f'{{"text": "{SPORTS}", "label": "a"}}\r\n{{"text": "ب", "label": "b"}}\r'
        f'{{"text": "ج", "label": "c"}}\n'.encode()
    )
    (tmp_path / "lines.txt").write_bytes(b"a\r\nb\rc\nd")
    [folder_doc] = read_source(tmp_path / "folder")
    assert clean_text(folder_doc.text).splitlines() == [
        "فاز الفريق بالمباراه وسجل اللاعب هدفين في الدوري",
        "سطر ثان",
        "سطر ثالث",
        "سطر رابع",
    ]
    assert [d.label for d in read_source(tmp_path / "t.csv")] == ["sports", "economy"]
    assert [d.label for d in read_source(tmp_path / "t.jsonl")] == ["a", "b", "c"]
    lines = read_source(tmp_path / "lines.txt", ReadOptions(require_labels=False), fmt="lines")
    assert [d.text for d in lines] == ["a", "b", "c", "d"]


# --- binary files -----------------------------------------------------------------------------


def test_binary_file_renamed_txt_is_skipped_and_counted_in_training(tmp_path):
    corpus_dir = tiny_plus(tmp_path, {"sports/photo.txt": PNG})
    docs = list(read_source(corpus_dir))
    [photo] = [d for d in docs if d.id == "sports/photo.txt"]
    assert (photo.text, photo.problem) == ("", corpus.BINARY_FILE)
    card = train_card(corpus_dir)
    assert card["dropped"] == {"binary_file": 1} and card["labels"]["sports"] == 6


@pytest.mark.parametrize("name", ["photo.csv", "photo.jsonl", "photo.txt"])
def test_binary_file_as_a_table_or_lines_is_refused(tmp_path, name):
    (tmp_path / name).write_bytes(PNG)
    fmt = "lines" if name.endswith(".txt") else None
    with pytest.raises(QismError, match=f"{name}: binary data, not text"):
        list(read_source(tmp_path / name, ReadOptions(require_labels=False), fmt))


def test_utf16_is_not_mistaken_for_binary(tmp_path):
    assert not corpus.looks_binary(("نص " * 100).encode("utf-16"))
    assert corpus.looks_binary(PNG)
    assert not corpus.looks_binary((SPORTS + "\x00" + SPORTS).encode())  # a stray NUL in a text


# --- corpus defects: training accounts for every document -------------------------------------


def test_training_summary_and_card_account_for_every_defect(tmp_path):
    corpus_dir = tiny_plus(
        tmp_path,
        {
            "sports/empty.txt": "",
            "sports/blank.txt": " \n\t \r\n",
            "sports/english.txt": "The team won the final match of the league",
            "sports/photo.txt": PNG,
            "economy/long.txt": (ECONOMY + " ") * (MAX_ARTICLE_CHARS // len(ECONOMY) + 10),
            "Sports/a.txt": "انتصر الفريق في المباراة الختامية للبطولة",
            " SPORTS /b.txt": "تعادل الفريقان في مباراة مثيرة على الملعب",
        },
    )
    (corpus_dir / "misc").mkdir()
    out = tmp_path / "model"
    result = run("train", corpus_dir, "--out", out, "--test-size", "0", "--min-df", "1", "--jobs", "1")
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text(encoding="utf-8"))
    assert card["dropped"] == {"empty_text": 2, "binary_file": 1}
    assert card["repaired"] == {"truncated": 1, "relabeled": 2}
    assert card["flagged"] == {"not_arabic": 1}
    assert card["label_merges"] == {" SPORTS ": "sports", "Sports": "sports"}
    assert card["empty_label_folders"] == [f"{corpus_dir}/misc/"]
    assert card["labels"] == {"economy": 7, "security": 6, "sports": 9}
    read = sum(source["documents"] for source in card["sources"])
    kept = sum(card["labels"].values())
    assert read == kept + sum(card["dropped"].values())  # nothing unaccounted for
    for line in (
        "Dropped before training: empty text 2, binary file 1.",
        "Kept after a fix: truncated 1, relabeled 2.",
        "Kept, worth a look: not arabic 1.",
        "Label spellings merged: ' SPORTS ' → 'sports', 'Sports' → 'sports'.",
        f"Label folders without articles (no such label): {corpus_dir}/misc/.",
    ):
        assert line in result.output
        assert line in (out / "card.md").read_text(encoding="utf-8")


def test_duplicate_ids_are_kept_and_flagged(tmp_path):
    rows = [
        ("1", SPORTS, "sports"),
        ("1", ECONOMY, "economy"),
        ("2", "سجل المهاجم هدفا", "sports"),
        ("3", "هبطت أسعار النفط", "economy"),
    ]
    path = tmp_path / "t.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("id", "text", "label"), *rows])
    card = train_card(path)
    assert card["flagged"] == {"duplicate_id": 1} and sum(card["labels"].values()) == 4


def test_empty_label_cells_and_numbered_labels(tmp_path):
    path = tmp_path / "t.jsonl"
    records = [
        {"text": SPORTS, "label": 1},
        {"text": ECONOMY, "label": 2},
        {"text": "نص", "label": ""},
        {"text": "هدف في الدقيقة الأخيرة", "label": 1},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    card = train_card(path)
    assert card["labels"] == {"1": 2, "2": 1} and card["dropped"] == {"no_label": 1}


def test_label_too_small_for_the_split_is_refused_in_one_line(tmp_path):
    corpus_dir = tiny_plus(tmp_path, {"rare/1.txt": "خبر نادر عن موضوع نادر"})
    assert_user_error(run("train", corpus_dir, "--out", tmp_path / "m"), "label(s) with a single document")


def test_too_high_min_df_is_one_line(tmp_path):
    assert_user_error(run("train", FIXTURES / "tiny", "--out", tmp_path / "m", "--min-df", "1000"), "--min-df")


def test_evaluate_maps_label_spellings_onto_the_models(tiny_model_dir, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"text": text, "label": label}, ensure_ascii=False)
            for text, label in [(SPORTS, " Sports"), (ECONOMY, "ECONOMY ")]
        ),
        encoding="utf-8",
    )
    scores = json.loads(run("evaluate", tiny_model_dir, path, "--json").output)
    assert scores["labels_unknown_to_model"] == [] and scores["accuracy"] == 1.0


# --- tables and JSON Lines --------------------------------------------------------------------

TABLE_DEFECTS = {
    "unbalanced quote at the end": (
        'text,label\nنص,a\n"نص مفتوح,b\nنص,c\n',
        "line 3: a quote opened in this row never closes",
    ),
    "unbalanced quote in the middle": ('text,label\n"نص,a\nنص,b\nنص,"c"d\n', r"lines 2-4: ',' expected after '\"'"),
    "row with too many fields": ("text,label\nنص,a\nنص,b,c\n", "line 3: 3 fields, the header has 2; quote fields"),
    "row with too few fields": ("text,label\nنص,a\nنص\n", "line 3: 1 fields, the header has 2"),
    "row with a line break and too many fields": (
        'text,label\n"نص\nثان",a,x\n',
        "lines 2-3: 3 fields, the header has 2; a quote may be unbalanced",
    ),
    "empty file": ("", "empty file, expected a header row"),
    "no text column": ("a,b\n1,2\n", "no text column \\(looked for text, content"),
}


JSONL_DEFECTS = {
    "broken line": ('{"text": "a", "label": "b"}\n{"text": \n', "line 2: not valid JSON"),
    "missing text": (
        '{"text": "a", "label": "b"}\n{"body": "a", "label": "b"}\n',
        "line 2: no 'text' text in the record; name the key with --text-column",
    ),
    "missing label": (
        '{"text": "a", "x": "b"}\n',
        "line 1: no label key .looked for label, labels, class, category, section, topic, القسم; "
        "name it with --label-column",
    ),
    "not an object": ('["a", "b"]\n', "line 1: not a JSON object"),
    "nested too deeply": ("[" * 100_000 + "]" * 100_000 + "\n", "line 1: not valid JSON"),
    "number too long": ('{"text": "a", "label": ' + "1" * 5000 + "}\n", "line 1: not valid JSON"),
}

FILE_DEFECTS = {
    **{f"csv {name}": ("t.csv", *case) for name, case in TABLE_DEFECTS.items()},
    **{f"jsonl {name}": ("t.jsonl", *case) for name, case in JSONL_DEFECTS.items()},
}


@pytest.mark.parametrize("defect", FILE_DEFECTS)
def test_table_and_jsonl_defects_name_the_line(tmp_path, defect):
    name, content, message = FILE_DEFECTS[defect]
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(QismError, match=message):
        list(read_source(tmp_path / name))


def test_damaged_gzip_is_refused(tmp_path):
    packed = gzip.compress(b'{"text": "a", "label": "b"}\n' * 1000)
    (tmp_path / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    (tmp_path / "bad.jsonl.gz").write_bytes(packed[:20] + bytes(len(packed) - 20))
    (tmp_path / "plain.jsonl.gz").write_bytes(b'{"text": "a"}\n')
    for name in ("cut.jsonl.gz", "bad.jsonl.gz", "plain.jsonl.gz"):
        with pytest.raises(QismError, match=name):
            list(read_source(tmp_path / name))


def test_lone_surrogates_from_json_escapes_are_replaced(tmp_path, tiny_model_dir):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "x\\ud800", "text": "\\udc00 ' + SPORTS + '", "label": "sports"}\n', encoding="utf-8")
    [doc] = read_source(path)
    assert (doc.id, doc.text) == ("x\ufffd", "\ufffd " + SPORTS)
    result = run("predict", "--model", tiny_model_dir, "--input", path, "--format", "jsonl")
    assert json.loads(result.stdout)["id"] == "x\ufffd" and json.loads(result.stdout)["label"] == "sports"


# --- hostile archives and trees ---------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "../evil/1.txt",
        "sports/../../1.txt",
        "/etc/sports/1.txt",
        "C:/sports/1.txt",
        "..\\sports\\1.txt",
        "\\\\server\\sports\\1.txt",
    ],
)
def test_zip_entries_pointing_outside_are_refused_by_name(tmp_path, entry):
    archive = write_zip(tmp_path / "c.zip", {"sports/ok.txt": SPORTS, entry: SPORTS})
    with pytest.raises(QismError, match="entries that point outside the archive") as caught:
        list(read_source(archive))
    assert repr(entry) in str(caught.value)


def test_zip_bomb_is_refused_before_reading(tmp_path, monkeypatch):
    archive = write_zip(tmp_path / "bomb.zip", {"sports/1.txt": b"\0" * (3 << 20), "economy/1.txt": ECONOMY})
    assert archive.stat().st_size < 10_000
    monkeypatch.setattr(corpus.limits, "MAX_ARCHIVE_BYTES", 1 << 20)
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("read before the size check"))
    with pytest.raises(QismError, match=r"unpack to 3,145,\d+ bytes, more than the 1,048,576 .* zip bomb"):
        list(read_source(archive))


def test_zip_reads_are_bounded_even_past_the_size_check(tmp_path, monkeypatch):
    archive = write_zip(tmp_path / "bomb.zip", {"sports/1.txt": b"\0" * (3 << 20)})
    monkeypatch.setattr(corpus.limits, "MAX_ARCHIVE_BYTES", 1 << 20)
    monkeypatch.setattr(corpus.folders, "_check_archive", lambda *args: None)
    with pytest.raises(QismError, match="unpacks to more than"):
        list(read_source(archive))


def test_zip_with_lying_or_damaged_headers_is_refused(tmp_path, monkeypatch):
    body = write_zip(tmp_path / "ok.zip", {"sports/1.txt": SPORTS * 50}).read_bytes()
    smaller = bytearray(body)  # declares 5 bytes, holds more
    for signature, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = smaller.find(signature)
        smaller[i + at : i + at + 4] = struct.pack("<I", 5)
    bigger = bytearray(body)  # declares 4 GiB
    i = bigger.find(b"PK\x01\x02")
    bigger[i + 24 : i + 28] = struct.pack("<I", 0xFFFFFFF0)
    encrypted = bytearray(body)
    for signature, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        encrypted[encrypted.find(signature) + at] |= 1
    monkeypatch.setattr(corpus.limits, "MAX_ARCHIVE_BYTES", 1 << 30)
    cases = {
        "smaller.zip": (smaller, "Bad CRC-32"),
        "bigger.zip": (bigger, "zip bomb"),
        "encrypted.zip": (encrypted, "encrypted"),
        "truncated.zip": (body[:60], "not a valid zip archive"),
        "text.zip": (SPORTS.encode(), "not a valid zip archive"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(bytes(content))
        with pytest.raises(QismError, match=message):
            list(read_source(tmp_path / name))


def test_oversized_article_file_is_refused(tmp_path, monkeypatch):
    write_tree(tmp_path / "c", {"sports/1.txt": SPORTS * 100})
    write_zip(tmp_path / "c.zip", {"sports/1.txt": SPORTS * 100})
    monkeypatch.setattr(corpus.limits, "MAX_FILE_BYTES", 1000)
    for source in ("c", "c.zip"):
        with pytest.raises(QismError, match="more than the 1,000 qism reads as one article; split it"):
            list(read_source(tmp_path / source))


def test_symlink_loops_end_and_linked_label_folders_are_read_once(tmp_path):
    root = write_tree(tmp_path / "c", {"sports/1.txt": SPORTS, "store/economy/1.txt": ECONOMY})
    os.symlink(root, root / "sports" / "loop")  # a loop back to the top
    os.symlink(root / "sports", root / "sports" / "self")  # a loop onto itself
    os.symlink(root / "store" / "economy", root / "economy")  # a label folder kept elsewhere in the corpus
    os.symlink(root / "store" / "economy", root / "again")  # the same folder twice
    os.symlink(root / "missing", root / "dangling.txt")  # a link to nothing
    assert [doc.id for doc in read_source(root)] == ["again/1.txt", "sports/1.txt"]


def test_a_200_mb_article_trains_and_labels_in_bounded_time(tmp_path, tiny_model_dir):
    huge = tmp_path / "huge.txt"
    with open(huge, "w", encoding="utf-8") as handle:
        sentence = ECONOMY + " "
        handle.write(sentence * (200_000_000 // len(sentence.encode())))
    assert huge.stat().st_size > 199_000_000
    corpus_dir = tiny_plus(tmp_path, {})
    os.link(huge, corpus_dir / "economy" / "huge.txt")
    started = time.perf_counter()
    card = train_card(corpus_dir)
    assert card["repaired"] == {"truncated": 1} and card["labels"]["economy"] == 7
    result = run("predict", "--model", tiny_model_dir, "--input", huge, "--format", "jsonl")
    assert json.loads(result.stdout)["label"] == "economy"
    assert time.perf_counter() - started < 60


# --- where a model is saved: qism replaces only a model folder ---------------------------------


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content, to show nothing was touched."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def out_cases(tmp_path: Path) -> dict[str, tuple[list, Path, str]]:
    """(sources, --out, what the message says) for each folder `qism train` must not replace."""
    corpus_dir = tiny_plus(tmp_path / "data", {})
    user_files = write_tree(tmp_path / "thesis", {"chapter1.txt": "my work", "figures/plot.png": PNG})
    other_card = write_tree(tmp_path / "other-tool", {"card.json": '{"name": "not qism"}', "weights.bin": b"\x00"})
    model_plus = tmp_path / "model-plus"
    train([corpus_dir], TrainConfig(test_size=0, min_df=1)).save(model_plus)
    (model_plus / "notes.txt").write_text("mine")
    return {
        "a folder of user files": ([corpus_dir], user_files, "holds files that are not a qism model's"),
        "the corpus itself": ([corpus_dir], corpus_dir, "is the training source"),
        "a parent of the corpus": ([corpus_dir], tmp_path / "data", "holds the training source"),
        "a folder inside the corpus": ([corpus_dir], corpus_dir / "models", "lies inside the training source"),
        "the current folder": ([corpus_dir], Path("."), "is the current folder"),
        "a parent of the current folder": ([corpus_dir], Path(".."), "holds the current folder"),
        "another tool's card.json": ([corpus_dir], other_card, "holds files that are not a qism model's"),
        "a model with a user file added": ([corpus_dir], model_plus, "holds files that are not a qism model's"),
    }


OUT_CASES = [
    "a folder of user files",
    "the corpus itself",
    "a parent of the corpus",
    "a folder inside the corpus",
    "the current folder",
    "a parent of the current folder",
    "another tool's card.json",
    "a model with a user file added",
]


@pytest.mark.parametrize("case", OUT_CASES)
def test_train_out_replaces_only_a_model_folder(tmp_path, monkeypatch, case):
    sources, out, fragment = out_cases(tmp_path)[case]
    monkeypatch.chdir(write_tree(tmp_path / "work" / "here", {"draft.txt": "mine"}))
    before = snapshot(tmp_path)
    from qism import trainer

    def no_training(*args, **kwargs):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr(trainer, "train", no_training)
    assert_user_error(run("train", *sources, "--out", out), fragment)
    assert snapshot(tmp_path) == before


def test_model_save_refuses_the_same_folders_for_python_users(tmp_path):
    cases = out_cases(tmp_path)
    model = train(cases["the corpus itself"][0], TrainConfig(test_size=0, min_df=1))
    before = snapshot(tmp_path)
    for case in (
        "a folder of user files",
        "the corpus itself",
        "a parent of the corpus",
        "a model with a user file added",
    ):
        with pytest.raises(QismError, match=cases[case][2]):
            model.save(cases[case][1])
    assert snapshot(tmp_path) == before


def test_train_out_replaces_a_model_an_empty_folder_and_writes_through_a_link(tmp_path, tiny_model_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    os.symlink(model_dir, tmp_path / "link")
    for out in (empty, model_dir, tmp_path / "link"):
        result = run("train", FIXTURES / "tiny", "--out", out, "--test-size", "0", "--min-df", "1", "--C", "5")
        assert result.exit_code == 0, result.output
        assert load_model(out).card["config"]["C"] == 5.0
    assert (tmp_path / "link").is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["empty", "link", "model"]


# --- prediction never drops or reorders a record ----------------------------------------------


def test_every_input_gets_one_record_in_order_also_without_text(tmp_path, tiny_model_dir):
    path = tmp_path / "in.jsonl"
    texts = [SPORTS, "", "   \n", ECONOMY, "\u200b"]
    path.write_text("\n".join(json.dumps({"id": f"a{i}", "text": t}) for i, t in enumerate(texts)), encoding="utf-8")
    records = [
        json.loads(line)
        for line in run("predict", "--model", tiny_model_dir, "--input", path, "--format", "jsonl").output.splitlines()
    ]
    assert [r["id"] for r in records] == ["a0", "a1", "a2", "a3", "a4"]
    assert [r["label"] for r in records[:4]] == ["sports", "unknown", "unknown", "economy"]
    assert records[1] == {"id": "a1", "label": "unknown", "top": [], "reason": "empty text"}
    for fmt in ("csv", "table", "json"):
        result = run("predict", "--model", tiny_model_dir, "--input", path, "--format", fmt, "--unknown-label", "?")
        assert result.exit_code == 0, result.output
        assert result.output.count("empty text") == 2 and "?" in result.output
    rows = list(
        csv.DictReader(
            io.StringIO(run("predict", "--model", tiny_model_dir, "--input", path, "--format", "csv").output)
        )
    )
    assert [(r["id"], r["label"], r["reason"]) for r in rows][:2] == [
        ("a0", "sports", ""),
        ("a1", "unknown", "empty text"),
    ]


def test_text_without_arabic_words_is_unknown_with_a_reason(tmp_path, tiny_model_dir):
    texts = ["Police arrested two suspects on Monday.", "2024 - 15.3% - 0661", "# @ !! ...", "ب 12", SPORTS]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps({"id": f"a{i}", "text": t}) for i, t in enumerate(texts)), encoding="utf-8")
    result = run("predict", "--model", tiny_model_dir, "--input", path, "--format", "jsonl")
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["label"], r["top"], r.get("reason")) for r in records[:4]] == [("unknown", [], "no Arabic words")] * 4
    assert records[4]["label"] == "sports" and "reason" not in records[4]
    table = run("predict", "--model", tiny_model_dir, "--input", path)
    assert table.exit_code == 0 and table.output.count("no Arabic words") == 4


def test_binary_and_empty_files_in_a_folder_get_records(tmp_path, tiny_model_dir):
    folder = write_tree(tmp_path / "in", {"1.txt": SPORTS, "2.txt": PNG, "3.txt": "", "4.txt": ECONOMY})
    result = run("predict", "--model", tiny_model_dir, "--input", folder, "--format", "jsonl")
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["id"], r["label"], r.get("reason")) for r in records] == [
        ("1.txt", "sports", None),
        ("2.txt", "unknown", "binary file"),
        ("3.txt", "unknown", "empty text"),
        ("4.txt", "economy", None),
    ]


def test_errors_replace_in_predict_notes_the_count(tmp_path, tiny_model_dir):
    (first, at), (second, _) = damaged_utf8(), damaged_utf8(40)
    (tmp_path / "in.txt").write_bytes(first + b"\n" + second + b"\n")
    assert_user_error(
        run("predict", "--model", tiny_model_dir, "--input", tmp_path / "in.txt", "--lines"),
        f"line 1: not valid utf-8 at byte {at:,}",
    )
    result = run("predict", "--model", tiny_model_dir, "--input", tmp_path / "in.txt", "--lines", "--errors", "replace")
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 3
    assert "2 undecodable characters were replaced by U+FFFD" in result.stderr
    assert_user_error(run("predict", SPORTS, "--model", tiny_model_dir, "--errors", "ignore"), "--errors must be")


def big_input(path: Path, n: int) -> Path:
    words = SPORTS.split() + ECONOMY.split()
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            text = " ".join(words[(i + j) % len(words)] for j in range(8))
            handle.write(json.dumps({"id": f"d{i}", "text": text}, ensure_ascii=False) + "\n")
    return path


def read_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def qism(*args) -> list[str]:
    return [sys.executable, "-c", "from qism.cli import app; app()", *map(str, args)]


def test_killed_predict_leaves_no_half_file_and_resume_finishes_it(tmp_path, tiny_model_dir):
    n = 40_000
    source = big_input(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.jsonl"
    command = qism(
        "predict",
        "--model",
        tiny_model_dir,
        "--input",
        source,
        "--format",
        "jsonl",
        "--output",
        out,
        "--jobs",
        "1",
        "--quiet",
    )
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 100_000 for p in tmp_path.glob(".out.jsonl.*.part")):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()  # no half file where the output belongs
    [partial] = tmp_path.glob(".out.jsonl.*.part")
    complete, _, cut_off = partial.read_bytes().rpartition(b"\n")
    records = complete.split(b"\n")
    assert 0 < len(records) < n
    records[0] = json.dumps({**json.loads(records[0]), "label": "carried over"}).encode()
    partial.write_bytes(b"\n".join(records) + b"\n" + cut_off)
    finished = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert read_ids(out) == [f"d{i}" for i in range(n)]
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["label"] == "carried over"  # not redone
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.jsonl.qism-run.json", "in.jsonl", "out.jsonl"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_appends_only_what_is_missing(tmp_path, tiny_model_dir, fmt):
    source = big_input(tmp_path / "in.jsonl", 30)
    out = tmp_path / f"out.{fmt}"
    args = ("predict", "--model", tiny_model_dir, "--input", source, "--format", fmt, "--output", out)
    assert run(*args).exit_code == 0
    whole = out.read_text(encoding="utf-8")
    out.write_text(whole[: whole.index("d9") + 3], encoding="utf-8")  # the last record cut off mid-way
    result = run(*args, "--resume")
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == whole


def test_resume_refuses_another_input_and_other_formats(tmp_path, tiny_model_dir):
    out = tmp_path / "out.jsonl"
    run(
        "predict",
        "--model",
        tiny_model_dir,
        "--input",
        big_input(tmp_path / "a.jsonl", 5),
        "--format",
        "jsonl",
        "--output",
        out,
    )
    other = tmp_path / "b.jsonl"
    other.write_text("\n".join(json.dumps({"id": f"x{i}", "text": SPORTS}) for i in range(9)), encoding="utf-8")
    assert_user_error(
        run("predict", "--model", tiny_model_dir, "--input", other, "--format", "jsonl", "--output", out, "--resume"),
        "was written with another input",
    )
    assert_user_error(
        run("predict", "--model", tiny_model_dir, "--input", other, "--format", "table", "--output", out, "--resume"),
        "--resume continues an --output file",
    )
    assert read_ids(out) == [f"d{i}" for i in range(5)]  # untouched
    # a folder is known by its path: the ids of the records already written are checked
    folder = write_tree(tmp_path / "in", {f"{i}.txt": SPORTS for i in range(6)})
    args = ("predict", "--model", tiny_model_dir, "--input", folder, "--format", "jsonl", "--output", out)
    assert run(*args).exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:4]), encoding="utf-8")
    (folder / "3.txt").rename(folder / "3b.txt")
    assert_user_error(run(*args, "--resume"), "ends with id '3.txt' where the input has '3b.txt'")
    for name in ("0.txt", "1.txt", "2.txt"):
        (folder / name).unlink()
    assert_user_error(run(*args, "--resume"), "more records than the input has")


def test_errors_quoting_the_users_data_stay_one_line(tmp_path):
    (tmp_path / "t.csv").write_text('"first\nsecond",label\nنص,a\n', encoding="utf-8")
    assert_user_error(run("train", tmp_path / "t.csv", "--out", tmp_path / "m"), "columns are: first\\nsecond, label")
