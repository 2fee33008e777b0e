import gzip
import json
import zipfile

import pytest
from qism import QismError, ReadOptions, read_source, read_sources

ARTICLE = "فاز المنتخب الوطني بالمباراة النهائية"


def labels_of(docs):
    return sorted({doc.label for doc in docs})


def test_folder_per_label(tiny):
    docs = list(read_source(tiny))
    assert len(docs) == 18
    assert labels_of(docs) == ["economy", "security", "sports"]
    assert all(doc.id.endswith(".txt") and doc.text for doc in docs)


def test_zip_under_one_top_folder(tmp_path):
    archive = tmp_path / "corpus.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Khaleej/", "")
        zf.writestr("Khaleej/Sports/0001.txt", ARTICLE)
        zf.writestr("Khaleej/رياضة/0002.txt", ARTICLE + " الثانية")
        zf.writestr("Khaleej/notes.md", "ignored")
    docs = list(read_source(archive))
    assert [(d.label, d.id) for d in docs] == [
        ("Sports", "Khaleej/Sports/0001.txt"),
        ("رياضة", "Khaleej/رياضة/0002.txt"),
    ]


@pytest.mark.parametrize("header", ["Class,Content,ID,Platform", "LABEL,TEXT,id,x", "category,body,Id,p"])
def test_csv_default_columns_any_case(tmp_path, header):
    path = tmp_path / "posts.csv"
    path.write_text(f'{header}\nsports,"{ARTICLE}\nسطر ثان",7,x\n', encoding="utf-8")
    [doc] = read_source(path)
    assert (doc.label, doc.id) == ("sports", "7")
    assert doc.text == f"{ARTICLE}\nسطر ثان"


def test_csv_named_columns_and_tsv(tmp_path):
    path = tmp_path / "posts.tsv"
    path.write_text(f"topic_name\tstory\nsports\t{ARTICLE}\n", encoding="utf-8")
    options = ReadOptions(text_column="story", label_column="topic_name")
    assert [d.label for d in read_source(path, options)] == ["sports"]


def test_csv_without_the_named_column(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(QismError, match=r"no column 'story' \(--text-column\); the columns are: a, b"):
        list(read_source(path, ReadOptions(text_column="story")))


def test_jsonl_gz_with_title_and_id(tmp_path):
    path = tmp_path / "ant.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(
            json.dumps(
                {"id": 5, "source": "BBC", "label": "sport", "title": "عنوان", "text": ARTICLE}, ensure_ascii=False
            )
            + "\n\n"
        )
    [doc] = read_source(path)
    assert (doc.id, doc.label, doc.outlet, doc.text) == ("5", "sport", "BBC", f"عنوان\n{ARTICLE}")


def test_jsonl_broken_line_is_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a", "label": "b"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(QismError, match="line 2"):
        list(read_source(path))


def test_several_sources_in_one_run(tiny, tmp_path):
    path = tmp_path / "more.jsonl"
    path.write_text(json.dumps({"text": ARTICLE, "label": "sports"}) + "\n", encoding="utf-8")
    assert len(list(read_sources([tiny, path]))) == 19


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(QismError, match="no such file"):
        list(read_source(tmp_path / "nope"))
    (tmp_path / "x.docx").write_bytes(b"PK")
    with pytest.raises(QismError, match="unknown format"):
        list(read_source(tmp_path / "x.docx"))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1256"])
def test_encodings_detected(tmp_path, encoding):
    (tmp_path / "sports").mkdir()
    (tmp_path / "sports" / "1.txt").write_bytes(ARTICLE.encode(encoding))
    [doc] = read_source(tmp_path)
    assert doc.text == ARTICLE


def test_unlabeled_text_files_for_prediction(tmp_path):
    (tmp_path / "a.txt").write_text(ARTICLE, encoding="utf-8")
    with pytest.raises(QismError, match="outside a label folder"):
        list(read_source(tmp_path))
    [doc] = read_source(tmp_path, ReadOptions(require_labels=False))
    assert doc.label is None and doc.id == "a.txt"
