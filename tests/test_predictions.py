import codecs
import csv
import gzip
import io
import json

import numpy as np
import pytest
import qism.progress
from conftest import ECONOMY, SPORTS, run
from qism import Document, LabelOptions, TfidfFeaturizer, load_model
from qism.explain import _term_of_column
from qism.output import display_width
from qism.predict import label_documents
from qism.progress import ProgressMeter, count_documents

# --- --threshold and --unknown-label ----------------------------------------------------------


def test_threshold_labels_unsure_articles_unknown(tiny_model_dir):
    model = load_model(tiny_model_dir)
    docs = [Document(SPORTS), Document(ECONOMY)]
    sure = list(label_documents(model, docs, LabelOptions(top_k=2)))
    unsure = list(label_documents(model, docs, LabelOptions(top_k=2, threshold=1.0, unknown_label="?")))
    assert [r["label"] for r in sure] == ["sports", "economy"]
    assert [r["label"] for r in unsure] == ["?", "?"]
    assert [r["top"] for r in unsure] == [r["top"] for r in sure]  # the scores stay for whoever decides


def test_threshold_cli_with_an_arabic_unknown_label(tiny_model_dir):
    result = run(
        "predict",
        SPORTS,
        "--model",
        tiny_model_dir,
        "--format",
        "json",
        "--threshold",
        "1",
        "--unknown-label",
        "غير معروف",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["label"] == "غير معروف" and "\\u" not in result.stdout
    assert (
        json.loads(run("predict", SPORTS, "--model", tiny_model_dir, "--format", "json", "--threshold", "0.0").stdout)[
            0
        ]["label"]
        == "sports"
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--threshold", "1.5"), "--threshold"),
        (("--unknown-label", "sports"), "--unknown-label"),
        (("--explain", "-1"), "--explain"),
        (("--bom", "--format", "json"), "--bom"),
    ],
)
def test_prediction_option_mistakes_are_one_line(tiny_model_dir, args, fragment):
    result = run("predict", SPORTS, "--model", tiny_model_dir, *args)
    assert result.exit_code == 1 and fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- --explain --------------------------------------------------------------------------------


def test_explain_gives_the_article_terms_behind_its_label(tiny_model_dir):
    model = load_model(tiny_model_dir)
    proba, [terms] = model.explain([SPORTS], 4)
    np.testing.assert_allclose(proba, model.predict_proba([SPORTS]), rtol=1e-6)
    assert 1 <= len(terms) <= 4
    weights = [t["weight"] for t in terms]
    assert weights == sorted(weights, reverse=True) and min(weights) > 0
    words = set(model.pipeline.named_steps["features"].analyze(SPORTS))
    assert all(t["term"] in words for t in terms)  # cleaned and normalized, as the model saw them


def test_a_shared_hashed_column_shows_its_most_specific_term():
    featurizer = TfidfFeaturizer(cleaner="passthrough", min_df=1, n_buckets=1, lead_words=0).fit(
        ["الفريق فاز بالمباراة"]
    )
    assert _term_of_column(featurizer, "الفريق فاز بالمباراة") == {0: "فاز بالمباراة"}  # the longest bigram


def test_explain_in_json_and_in_the_table_reads_as_arabic(sample_model_dir):
    text = "اعتقلت الشرطة عصابة لتهريب المخدرات عبر الحدود"
    result = run("predict", text, "--model", sample_model_dir, "--format", "json", "--explain", "3")
    [record] = json.loads(result.stdout)
    assert record["label"] == "أمن" and 1 <= len(record["terms"]) <= 3
    assert "\\u" not in result.stdout and record["terms"][0]["term"] in result.stdout
    table = run("predict", text, "--model", sample_model_dir, "--explain", "3").stdout.splitlines()
    assert table[0].split()[-1] == "terms"
    header, row = table
    terms_at = display_width(header[: header.index("terms")])  # the terms are the last column
    assert display_width(row[: row.index(record["terms"][0]["term"])]) >= terms_at > 0


def test_explain_in_csv_and_bom_for_excel(tiny_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    result = run(
        "predict",
        SPORTS,
        ECONOMY,
        "--model",
        tiny_model_dir,
        "--format",
        "csv",
        "--explain",
        "2",
        "--bom",
        "--output",
        out,
    )
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(codecs.BOM_UTF8) and data.count(codecs.BOM_UTF8) == 1
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["label"] for r in rows] == ["sports", "economy"]
    assert all(r["terms"].count(":") in (1, 2) for r in rows)
    plain = run("predict", SPORTS, "--model", tiny_model_dir, "--format", "csv").stdout
    assert not plain.startswith("\ufeff") and "terms" not in plain


# --- progress ---------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_meter_counts_rate_and_time_left():
    clock = Clock()
    meter = ProgressMeter(total=1000, clock=clock)
    clock.now += 0.5
    assert meter.update(100) is None  # a quick run shows nothing
    clock.now += 4.5
    assert meter.update(400) == "500/1,000 documents, 100 docs/s, ETA 0:05"
    clock.now += 5
    assert meter.update(500) == "1,000/1,000 documents, 100 docs/s"
    assert meter.summary() == "labeled 1,000 documents in 0:10 (100 docs/s)"
    assert ProgressMeter(clock=clock).summary() is None
    unknown_total = ProgressMeter(clock=clock)
    clock.now += 3
    assert unknown_total.update(30) == "30 documents, 10 docs/s"


def test_count_documents_where_a_quick_pass_can_tell(tiny, tmp_path):
    assert count_documents(tiny) == 18
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n\n{"text": "y"}\n', encoding="utf-8")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write('{"text": "x"}\n' * 5)
    (tmp_path / "c.csv").write_text('text\n"two\nlines"\n', encoding="utf-8")
    assert count_documents(tmp_path / "a.jsonl") == 2
    assert count_documents(tmp_path / "b.jsonl.gz") == 5
    assert count_documents(tmp_path / "c.csv") is None
    assert count_documents("-") is None
    assert count_documents(tmp_path / "missing.jsonl") is None


def test_progress_goes_to_stderr_and_quiet_turns_it_off(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(qism.progress, "SHOW_AFTER_SECONDS", 0.0)
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            json.dumps({"id": str(i), "text": t}, ensure_ascii=False) for i, t in enumerate([SPORTS, ECONOMY, SPORTS])
        ),
        encoding="utf-8",
    )
    result = run("predict", "--input", source, "--model", tiny_model_dir, "--format", "jsonl")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["0", "1", "2"]
    assert "3/3 documents" in result.stderr and "docs/s" in result.stderr and "labeled 3 documents" in result.stderr
    quiet = run("predict", "--input", source, "--model", tiny_model_dir, "--format", "jsonl", "--quiet")
    assert quiet.stdout == result.stdout and quiet.stderr == ""
