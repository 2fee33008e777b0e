"""One input layer: a reader per format behind one registry, one column policy for every format with
named columns, folders that read every format they hold, and the reading bugs of issue 24 (Parquet
types and damage, devices, FIFOs and corpora replaced under streaming training, label maps)."""

import csv
import json
import os
import threading

import pytest
from conftest import SPORTS, assert_user_error, run, write_label_map
from qism import QismError, ReadOptions, TrainConfig, read_source, train
from qism.config import INPUT_FORMATS
from qism.corpus import READERS
from qism.recipe import LabelMap

#: The same records, named by other usual column names than `text`, `label` and `id`.
RECORDS = [
    {"doc_id": "a-1", "headline": "عنوان", "content": SPORTS, "category": "sport", "outlet": "BBC", "url": "u1"},
    {"doc_id": "a-2", "headline": "", "content": SPORTS + " ثان", "category": "sport|economy", "outlet": "", "url": ""},
]


def write_as(path, records):
    """`records` in the format `path`'s name says."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    elif path.suffix == ".parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, list(records[0]), delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(records)
    return path


def test_every_format_config_names_has_a_reader():
    assert set(READERS) == set(INPUT_FORMATS)


@pytest.mark.parametrize("name", ["a.csv", "a.tsv", "a.jsonl", "a.parquet"])
def test_one_column_policy_for_every_format(tmp_path, name):
    path = write_as(tmp_path / name, RECORDS)
    docs = list(read_source(path, ReadOptions(keep_columns=("url",))))
    assert [(d.id, d.text, d.label, d.labels, d.outlet, d.fields) for d in docs] == [
        ("a-1", f"عنوان\n{SPORTS}", "sport", (), "BBC", (("url", "u1"),)),
        ("a-2", SPORTS + " ثان", "sport", ("sport", "economy"), name, (("url", ""),)),
    ]
    named = ReadOptions(text_column="headline", label_column="url", id_column="outlet", require_labels=False)
    first = next(read_source(path, named))
    assert (first.text, first.label, first.id) == ("عنوان\nعنوان", "u1", "BBC")
    with pytest.raises(QismError, match="no (column|key) 'guid' .--id-column.; the (column|key)s are: doc_id"):
        list(read_source(path, ReadOptions(id_column="guid")))


def test_a_folder_reads_every_format_it_holds(tmp_path, tiny_model_dir):
    folder = tmp_path / "mixed"
    (folder / "sports").mkdir(parents=True)
    (folder / "sports" / "1.txt").write_text(SPORTS, encoding="utf-8")
    write_as(folder / "more.jsonl", RECORDS)
    write_as(folder / "b.csv", RECORDS[:1])
    (folder / "notes.md").write_text("not a corpus", encoding="utf-8")
    (folder / "more.jsonl.labels.jsonl").write_text("{}\n", encoding="utf-8")  # an output of the cluster engine
    docs = list(read_source(folder))
    assert [(d.id, d.label, d.outlet) for d in docs] == [
        ("a-1", "sport", "BBC"),
        ("a-1", "sport", "BBC"),
        ("a-2", "sport", "more.jsonl"),
        ("sports/1.txt", "sports", "mixed"),
    ]
    result = run("predict", "-m", tiny_model_dir, "--input", folder, "--format", "jsonl", "-q")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [d.id for d in docs]


def parquet_modules():
    return pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")


def test_parquet_text_stored_as_bytes_is_decoded(tmp_path):
    pa, pq = parquet_modules()
    table = pa.table({"text": pa.array([SPORTS.encode(), SPORTS.encode("utf-16")], pa.binary()), "label": ["a", "b"]})
    pq.write_table(table, tmp_path / "b.parquet")
    assert [d.text for d in read_source(tmp_path / "b.parquet")] == [SPORTS, SPORTS]


@pytest.mark.parametrize(
    ("values", "kind"),
    [([1, 2], "int64"), ([{"x": "a"}, {"x": "b"}], "struct<x: string>"), ([["a"], ["b"]], "list<")],
)
def test_parquet_text_of_another_type_is_one_line(tmp_path, values, kind):
    pa, pq = parquet_modules()
    pq.write_table(pa.table({"text": values, "label": ["a", "b"]}), tmp_path / "t.parquet")
    result = run("train", tmp_path / "t.parquet", "--out", tmp_path / "m")
    assert_user_error(result, f"the text column 'text' holds {kind}")


@pytest.mark.parametrize("damage", ["empty", "truncated", "fake"])
def test_a_damaged_parquet_is_one_line(tmp_path, damage):
    pa, pq = parquet_modules()
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": [SPORTS] * 100, "label": ["a"] * 100}), path)
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "fake": b"text,label\nx,y\n"}[damage])
    for result in (
        run("train", path, "--out", tmp_path / "m"),
        run("predict", "--input", path, "-o", tmp_path / "o.jsonl"),
    ):
        assert_user_error(result, f"{path}: not a Parquet file that can be read")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_not_read_as_a_corpus(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    assert_user_error(run("train", device, "--out", tmp_path / "m"), f"{device}: a device, not a file")
    assert_user_error(run("predict", "--input", device), f"{device}: a device, not a file")


def write_corpus(path, n=30):
    rows = [{"text": f"{SPORTS} {i}", "label": "sport"} for i in range(n)]
    rows += [{"text": f"ارتفعت أسعار الأسهم في البورصة {i}", "label": "economy"} for i in range(n)]
    write_as(path, rows)
    return path


def test_streaming_refuses_a_fifo_it_would_read_twice(tmp_path):
    fifo = tmp_path / "corpus.jsonl"
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: write_corpus(fifo), daemon=True)  # in case it is opened
    feeder.start()
    result = run("train", fifo, "--out", tmp_path / "m", "--streaming")
    assert_user_error(result, "not a regular file: a pipe, FIFO or device")
    if feeder.is_alive():  # never opened: let the thread end
        with open(fifo, "rb") as handle:
            handle.read()


def test_streaming_refuses_a_corpus_replaced_between_its_reads(tmp_path, monkeypatch):
    import qism.trainer

    corpus = write_corpus(tmp_path / "c.jsonl")
    real_prepare = qism.trainer.prepare

    def prepare_then_replace(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        other = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
        for row in other:
            row["label"] = "sport" if row["label"] == "economy" else "economy"  # as many records, other labels
        write_as(corpus, other)
        return prepared

    monkeypatch.setattr(qism.trainer, "prepare", prepare_then_replace)
    with pytest.raises(QismError, match="changed between the two reads"):
        train([corpus], TrainConfig(test_size=0.0, min_df=1, classifier="sgd"), streaming=True)


def test_a_raw_label_holding_a_colon_is_mapped_and_an_empty_id_is_refused(tmp_path):
    label_map = LabelMap.from_dict({"labels": {"local": {"from": ["news:local", "c.jsonl:a:b"]}}})
    assert label_map.target("x.jsonl", "news:local") == "local"
    assert label_map.target("c.jsonl", "a:b") == "local"
    assert label_map.target("x.jsonl", "a:b") is None
    with pytest.raises(QismError, match="a label id is empty"):
        LabelMap.from_dict({"labels": {"": {"from": ["sports"]}}})
    assert write_label_map(tmp_path).is_file()  # the usual source:label entries still read
    assert LabelMap.load(tmp_path / "map.toml").target("tiny", "economy") == "money"
