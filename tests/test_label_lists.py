"""Records that give their labels as a list (issue 22's reading): JSON lists, CSV cells holding the
label separator, and fastText files; `label` is always the first of `labels`."""

import json

import pytest
from conftest import assert_user_error, run
from qism import QismError, ReadOptions, read_source
from qism.trainer import prepare

SPORTS = "فاز الفريق بالمباراة وسجل اللاعب هدفين"
ECONOMY = "ارتفعت أسعار الأسهم في البورصة"


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_a_json_label_list_of_any_length_gives_labels_and_its_first_as_label(tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"text": SPORTS, "label": ["sport", "economy"]},
            {"text": SPORTS, "labels": ["sport"]},
            {"text": ECONOMY, "label": "economy"},
            {"text": ECONOMY, "label": [3, "economy"]},
        ],
    )
    docs = list(read_source(path))
    assert [(d.label, d.labels) for d in docs] == [
        ("sport", ("sport", "economy")),
        ("sport", ("sport",)),
        ("economy", ()),
        ("3", ("3", "economy")),
    ]


@pytest.mark.parametrize(("name", "delimiter"), [("a.csv", ","), ("a.tsv", "\t")])
def test_a_table_cell_holding_the_separator_gives_labels(tmp_path, name, delimiter):
    path = tmp_path / name
    rows = [["text", "label"], [SPORTS, "sport|economy"], [SPORTS, "sport"], [ECONOMY, " economy | sport |"]]
    path.write_text("".join(delimiter.join(row) + "\n" for row in rows), encoding="utf-8")
    docs = list(read_source(path))
    assert [(d.label, d.labels) for d in docs] == [
        ("sport", ("sport", "economy")),
        ("sport", ()),
        ("economy", ("economy", "sport")),
    ]
    other = list(read_source(path, ReadOptions(label_separator=";")))
    assert [d.label for d in other] == ["sport|economy", "sport", " economy | sport |"]


@pytest.mark.parametrize("name", ["train.txt", "cooking.train", "ft.valid"])
def test_a_fasttext_file_is_detected_and_read_line_by_line(tmp_path, name):
    path = tmp_path / name
    path.write_text(f"__label__sport __label__economy  {SPORTS}\n\n__label__economy\t{ECONOMY}\r\n", encoding="utf-8")
    docs = list(read_source(path))
    assert [(d.text, d.label, d.labels, d.id, d.outlet) for d in docs] == [
        (SPORTS, "sport", ("sport", "economy"), "1", name),
        (ECONOMY, "economy", (), "3", name),
    ]


def test_input_format_fasttext_reads_a_file_detection_would_not(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text(f"{SPORTS}\n__label__economy {ECONOMY}\n", encoding="utf-8")
    with pytest.raises(QismError, match="no label"):
        list(read_source(path))
    docs = list(read_source(path, ReadOptions(input_format="fasttext")))
    assert [(d.text, d.label) for d in docs] == [(SPORTS, None), (ECONOMY, "economy")]


def test_an_unknown_input_format_is_one_line(tmp_path):
    with pytest.raises(QismError, match="--input-format must be one of"):
        ReadOptions(input_format="xml")
    result = run("predict", "--input", tmp_path, "--input-format", "xml")
    assert_user_error(result, "--input-format must be one of")


def test_empty_lists_repeated_labels_and_label_only_lines_are_counted(tmp_path):
    jsonl = write_jsonl(
        tmp_path / "a.jsonl",
        [{"text": SPORTS, "label": []}, {"text": ECONOMY, "label": ["economy", "economy", ""]}],
    )
    fasttext = tmp_path / "b.txt"
    fasttext.write_text(f"__label__sport\n__label__sport __label__sport {SPORTS} ثان\n", encoding="utf-8")
    docs = [(str(path), doc) for path in (jsonl, fasttext) for doc in read_source(path)]
    assert [(d.label, d.labels) for _, d in docs] == [
        (None, ()),
        ("economy", ("economy",)),
        ("sport", ()),
        ("sport", ()),
    ]
    prepared = prepare(docs)
    assert prepared.dropped == {"no_label": 1, "empty_text": 1}
    assert prepared.labels == ["economy", "sport"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.jsonl", json.dumps({"text": SPORTS, "label": ["sport", "a|b"]}) + "\n"),
        ("a.jsonl", json.dumps({"text": SPORTS, "label": ["sport", {"x": 1}]}) + "\n"),
        ("a.txt", f"__label__sport __label__a|b {SPORTS}\n"),
    ],
)
def test_a_label_holding_the_separator_or_not_text_is_one_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "model"
    result = run("train", path, "--out", out)
    assert_user_error(result, f"{path}: line 1: the label")
    assert not out.exists()


def test_with_another_separator_a_label_may_hold_the_bar(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": SPORTS, "label": ["sport", "a|b"]}])
    [doc] = read_source(path, ReadOptions(label_separator=";"))
    assert doc.labels == ("sport", "a|b")


def test_the_same_data_as_json_lines_and_as_fasttext_give_the_same_model(tmp_path, tiny):
    from qism import TrainConfig, train

    docs = [doc for doc in read_source(tiny)]
    texts = [" ".join(doc.text.split()) for doc in docs]
    write_jsonl(tmp_path / "c.jsonl", [{"text": t, "label": d.label} for t, d in zip(texts, docs)])
    (tmp_path / "c.ft").write_text("".join(f"__label__{d.label} {t}\n" for t, d in zip(texts, docs)), encoding="utf-8")
    config = TrainConfig(test_size=0.0, min_df=1)
    from_jsonl, from_fasttext = train([tmp_path / "c.jsonl"], config), train([tmp_path / "c.ft"], config)
    from_jsonl.save(tmp_path / "m1")
    from_fasttext.save(tmp_path / "m2")
    for name in ("arrays.npz", "pipeline.json"):
        assert (tmp_path / "m1" / name).read_bytes() == (tmp_path / "m2" / name).read_bytes()
