"""Multi-label models (issue 22): an article filed under several sections gets each of them, from
preparing the corpus to the records and the scores."""

import csv
import io
import json
import random

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_user_error, run
from qism.classifier import LinearClassifier, choose_thresholds, chosen_labels, multi_label_targets
from qism.config import LabelOptions, TrainConfig
from qism.corpus import Document
from qism.errors import QismError
from qism.evaluation import evaluate_documents
from qism.features import TfidfFeaturizer
from qism.model import load_model
from qism.output import write_records
from qism.predict import label_documents
from qism.trainer import fit, prepare
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

#: Words of each section, and words of none: synthetic articles drawn from them.
SECTION_WORDS = {
    "sports": "المباراة الفريق اللاعب هدف الدوري المدرب الملعب البطولة الكأس الحارس",
    "economy": "الأسهم البورصة التضخم الأسعار البنك الاستثمار النفط الصادرات الميزانية الضرائب",
    "security": "الشرطة اعتقال عصابة الحدود تهريب المخدرات الأمن التحقيق الجريمة السجن",
}
VOCABULARY = {label: words.split() for label, words in SECTION_WORDS.items()}
COMMON = ["قال", "في", "من", "على", "إلى", "أن", "هذا", "التي", "الذي", "يوم", "العام", "وقد"]
PAIRS = [("sports", "economy"), ("security", "economy")]


def article(labels, rng: random.Random) -> str:
    words = [rng.choice(VOCABULARY[label]) for label in labels for _ in range(12 // len(labels) + 2)]
    words += [rng.choice(COMMON) for _ in range(8)]
    rng.shuffle(words)
    return " ".join(words) + f" {rng.randrange(10**6)}"


def documents(n: int, seed: int, share_of_pairs: float = 0.3) -> list[Document]:
    """`n` articles, a share of them under two sections (labels given as a list)."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        labels = rng.choice(PAIRS) if rng.random() < share_of_pairs else (rng.choice(list(VOCABULARY)),)
        docs.append(Document(article(labels, rng), labels[0], f"d{i}", labels=tuple(labels)))
    return docs


def fitted(docs, **options):
    config = TrainConfig(test_size=0.0, boilerplate_min_docs=0, **options)
    prepared = prepare((("synthetic.jsonl", doc) for doc in docs), multi_label=config.multi_label)
    pipeline = fit(prepared, config, n_jobs=1).pipeline
    return pipeline


@pytest.fixture(scope="module")
def multi_label_model(tmp_path_factory):
    from qism.model import Model

    directory = tmp_path_factory.mktemp("models") / "multi"
    pipeline = fitted(documents(1200, seed=1))
    Model(pipeline, {"name": "multi", "labels": {}, "label_names": {"sports": "رياضة", "economy": "اقتصاد"}}).save(
        directory
    )
    return directory


def test_targets_follow_multilabelbinarizer_conventions():
    classes, indicator = multi_label_targets([["b", "a"], ["c"], []])
    assert list(classes) == ["a", "b", "c"]
    assert indicator.tolist() == [[True, True, False], [False, False, True], [False, False, False]]
    classes, indicator = multi_label_targets(np.array([[0, 1], [1, 1]]))
    assert list(classes) == [0, 1] and indicator.dtype == bool
    assert multi_label_targets(np.array(["a", "b"])) is None
    with pytest.raises(ValueError, match="only 0 and 1"):
        multi_label_targets(np.array([[0, 2], [1, 1]]))


def test_the_best_label_is_always_chosen_and_others_at_their_threshold():
    proba = np.array([[0.2, 0.3, 0.1], [0.9, 0.8, 0.05]])
    chosen = chosen_labels(proba, np.array([0.5, 0.5, 0.5]))
    assert chosen.tolist() == [[False, True, False], [True, True, False]]


def test_thresholds_separate_a_label_and_keep_the_default_for_a_rare_one():
    rng = np.random.default_rng(0)
    truth = np.zeros((400, 3), dtype=bool)
    truth[:200, 0] = True
    truth[200:, 1] = True
    truth[:100, 1] = True  # a hundred articles of both
    truth[:3, 2] = True  # too few to tune
    proba = np.where(truth, 0.3 + 0.1 * rng.random(truth.shape), 0.1 * rng.random(truth.shape))
    thresholds = choose_thresholds(proba, truth)
    assert 0.1 < thresholds[1] <= 0.3  # between the negatives and the positives
    assert thresholds[2] == pytest.approx(0.5)
    assert (chosen_labels(proba, thresholds)[:, :2] == truth[:, :2]).all()


def test_indicator_matrix_fits_in_a_pipeline_and_grid_search():
    docs = documents(300, seed=2)
    classes, indicator = multi_label_targets([doc.labels for doc in docs])
    pipeline = Pipeline([("features", TfidfFeaturizer(boilerplate_min_docs=0)), ("classifier", LinearClassifier())])
    search = GridSearchCV(pipeline, {"classifier__C": [0.5, 1.0]}, cv=KFold(3), scoring="f1_micro")
    search.fit([doc.text for doc in docs], indicator.astype(int))
    predicted = search.predict([doc.text for doc in docs[:5]])
    assert predicted.shape == (5, len(classes)) and set(np.unique(predicted)) <= {0, 1}
    assert search.best_score_ > 0.8
    # label lists, and a sparse indicator, fit the same model
    lists = LinearClassifier(random_state=3).fit(sp.csr_matrix(np.eye(4)), [["a"], ["b"], ["a", "b"], ["b"]])
    assert list(lists.classes_) == ["a", "b"] and lists.is_multi_label


def test_multi_label_model_finds_both_sections_and_saves_its_thresholds(multi_label_model):
    model = load_model(multi_label_model)
    assert model.is_multi_label
    thresholds = model.label_thresholds()
    assert thresholds.shape == (3,) and ((thresholds > 0) & (thresholds < 1)).all()
    test = documents(300, seed=3)
    predicted = model.predict([doc.text for doc in test])
    assert all(isinstance(labels, list) and labels for labels in predicted)
    pairs = [(doc, labels) for doc, labels in zip(test, predicted) if len(doc.labels) == 2]
    both = sum(set(doc.labels) <= set(labels) for doc, labels in pairs)
    assert both >= 0.8 * len(pairs)
    scores = evaluate_documents(model, test).scores
    assert scores["multi_label"] and scores["micro_f1"] > 0.9 and scores["hamming_loss"] < 0.1
    assert scores["several_labels"]["documents"] == len(pairs) and scores["several_labels"]["all_found"] == both
    co = scores["co_occurrence"]
    at = co["labels"].index
    assert co["true"][at("economy")][at("sports")] == sum(set(doc.labels) == {"sports", "economy"} for doc in test)


def test_records_carry_labels_best_first_and_every_labels_own_probability(multi_label_model):
    model = load_model(multi_label_model)
    both = "الأسهم البورصة التضخم المباراة الفريق اللاعب الأسعار هدف الدوري"
    [record, empty] = label_documents(model, [Document(both, id="1"), Document("", id="2")], LabelOptions(top_k=3))
    assert record["label"] == record["labels"][0] and set(record["labels"]) == {"sports", "economy"}
    assert record["labels_ar"] == [model.label_names[label] for label in record["labels"]]
    assert len(record["top"]) == 3 and sum(item["score"] for item in record["top"]) > 1  # each its own
    assert empty["labels"] == [] and empty["reason"]
    [only_best] = label_documents(model, [Document(both)], LabelOptions(threshold=1.0))
    assert only_best["labels"] == [only_best["label"]]
    out = io.StringIO()
    write_records([record, empty], "csv", out, top_k=1)
    header, first, _ = out.getvalue().splitlines()
    assert header.split(",")[:6] == ["id", "label", "label_ar", "score", "labels", "labels_ar"]
    assert first.split(",")[4] == "|".join(record["labels"])


def test_a_single_label_model_has_no_thresholds_and_no_multi_label_option(tmp_path):
    docs = [Document(doc.text, doc.label, doc.id) for doc in documents(150, seed=4, share_of_pairs=0)]
    pipeline = fitted(docs)
    assert not pipeline.named_steps["classifier"].is_multi_label
    assert "multi_label" not in TrainConfig().to_dict() and TrainConfig(multi_label=True).to_dict()["multi_label"]
    forced = fitted(docs, multi_label=True)
    assert forced.named_steps["classifier"].is_multi_label


def test_deduplication_merges_labels_only_for_a_multi_label_model():
    docs = [
        Document("نص أول عن الرياضة", "sports", labels=("sports",)),
        Document("نص  أول عن الرياضة", "economy"),
        Document("نص ثان", "sports"),
        Document("نص ثان", "sports"),
        Document("نص ثالث", "economy", labels=("economy", "economy", "sports")),
    ]
    single = prepare(("f", doc) for doc in docs[:4])
    assert single.label_lists is None and single.dropped == {"label_conflicts": 2, "duplicates": 1}
    multi = prepare(("f", doc) for doc in docs)
    assert multi.label_lists == [("sports", "economy"), ("sports",), ("economy", "sports")]
    assert multi.labels == ["sports", "sports", "economy"]
    assert multi.dropped == {"merged_labels": 1, "duplicates": 1}
    forced = prepare((("f", doc) for doc in docs[:4]), multi_label=True)
    assert forced.label_lists == [("sports", "economy"), ("sports",)]


def test_the_same_data_gives_the_same_multi_label_model():
    docs = documents(1100, seed=5)
    first, second = fitted(docs), fitted(list(docs))
    for name in ("coef_", "intercept_", "thresholds_"):
        assert (
            getattr(first.named_steps["classifier"], name).tobytes()
            == getattr(second.named_steps["classifier"], name).tobytes()
        )


def test_multi_label_refuses_what_it_does_not_do():
    with pytest.raises(QismError, match="not complement_nb"):
        TrainConfig(multi_label=True, classifier="complement_nb")


def test_card_and_summary_say_multi_label(multi_label_model):
    from qism.card import card_summary, scores_text

    model = load_model(multi_label_model)
    scores = evaluate_documents(model, documents(200, seed=6)).scores
    text = scores_text(scores)
    assert "micro-F1" in text and "Hamming loss" in text and "all sections found" in text
    assert "multi-label" in card_summary({"config": {"multi_label": True}}, "m")
    json.dumps(scores)  # JSON-ready for --json


# --- from files, through the command line and the server ------------------------------------


def write_corpus(folder, docs) -> tuple:
    """The same articles as JSON Lines (labels as lists) and as a fastText file."""
    jsonl, fasttext = folder / "ml.jsonl", folder / "ml.ft"
    jsonl.write_text("".join(json.dumps({"id": d.id, "text": d.text, "label": list(d.labels)}) + "\n" for d in docs))
    fasttext.write_text("".join(" ".join(f"__label__{x}" for x in d.labels) + f" {d.text}\n" for d in docs))
    return jsonl, fasttext


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    jsonl, fasttext = write_corpus(folder, documents(1100, seed=7))
    result = run("train", jsonl, "--out", folder / "m1", "--test-size", 0.2, "--boilerplate-min-docs", 0)
    assert result.exit_code == 0, result.output
    return folder, result


def test_label_lists_train_a_multi_label_model_and_the_summary_says_so(cli_model):
    folder, result = cli_model
    assert "Multi-label: " in result.stdout and "micro-F1" in result.stdout
    card = json.loads((folder / "m1" / "card.json").read_text())
    assert card["config"]["multi_label"] is True and card["scores"]["multi_label"]
    info = run("info", folder / "m1")
    assert "multi-label" in info.stdout


def test_the_same_data_as_json_lines_and_as_fasttext_give_the_same_multi_label_model(cli_model):
    folder, _ = cli_model
    for source, out in ((folder / "ml.ft", "m2"), (folder / "ml.jsonl", "m3")):
        result = run("train", source, "--out", folder / out, "--test-size", 0.2, "--boilerplate-min-docs", 0)
        assert result.exit_code == 0, result.output
    for name in ("arrays.npz", "pipeline.json"):
        first = (folder / "m1" / name).read_bytes()
        assert first == (folder / "m2" / name).read_bytes() == (folder / "m3" / name).read_bytes()


def test_predict_writes_labels_in_a_cell_and_evaluate_json_has_micro_f1(cli_model):
    folder, _ = cli_model
    both = "الأسهم البورصة التضخم المباراة الفريق اللاعب الأسعار هدف الدوري"
    result = run("predict", "--model", folder / "m1", both, "--format", "csv", "--top-k", 3)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert set(rows[0]["labels"].split("|")) == {"sports", "economy"} and rows[0]["label_3"]
    table = run("predict", "--model", folder / "m1", both)
    assert "labels" in table.stdout.splitlines()[0]
    test, _ = write_corpus(folder / "..", documents(200, seed=8))
    scores = run("evaluate", folder / "m1", test, "--json")
    assert scores.exit_code == 0, scores.output
    data = json.loads(scores.stdout)
    assert 0.9 < data["micro_f1"] <= 1 and 0 <= data["hamming_loss"] < 0.1
    assert "micro-F1" in run("evaluate", folder / "m1", test).stdout


def test_multi_label_training_refuses_streaming_and_autotune_in_one_line(cli_model):
    folder, _ = cli_model
    for option in (["--streaming"], ["--autotune", "5s"]):
        result = run("train", folder / "ml.jsonl", "--out", folder / "refused", *option)
        assert_user_error(result, "multi-label" if option[0] == "--streaming" else "--autotune")
    result = run("train", folder / "ml.jsonl", "--out", folder / "refused", "--classifier", "complement_nb")
    assert_user_error(result, "not complement_nb")


def test_serve_returns_the_records_qism_predict_prints(cli_model, start):
    pytest.importorskip("uvicorn")
    folder, _ = cli_model
    texts = ["الأسهم البورصة التضخم المباراة الفريق اللاعب الأسعار هدف الدوري", ""]
    response = start("--model", folder / "m1").predict(texts, top_k=3)
    assert response.status_code == 200, response.text
    printed = run("predict", "--model", folder / "m1", *texts, "--top-k", 3, "--format", "json", "--quiet")
    assert response.json()["predictions"] == json.loads(printed.stdout)
    assert len(response.json()["predictions"][0]["labels"]) == 2


def test_report_shows_multi_label_scores_and_which_sections_go_together(cli_model):
    pytest.importorskip("matplotlib")
    folder, _ = cli_model
    test, _ = write_corpus(folder / "..", documents(200, seed=9))
    for lang in ("en", "ar"):
        result = run("evaluate", folder / "m1", test, "--report", folder / f"report-{lang}", "--lang", lang)
        assert result.exit_code == 0, result.output
        page = (folder / f"report-{lang}" / "report.html").read_text(encoding="utf-8")
        assert "micro-F1" in page and "Hamming loss" in page and page.count("<img") == 3
    page = (folder / "report-en" / "report.html").read_text(encoding="utf-8")
    assert "Sections filed together" in page and "calibration" not in page.lower()
    per_label = (folder / "report-en" / "per_label.csv").read_text(encoding="utf-8-sig").splitlines()
    assert per_label[0].endswith("predicted") and len(per_label) == 4


def test_parquet_outputs_of_the_cluster_keep_a_multi_label_records_labels(multi_label_model):
    pq = pytest.importorskip("pyarrow.parquet")
    from qism.output import write_record_bytes

    model = load_model(multi_label_model)
    both = "الأسهم البورصة التضخم المباراة الفريق اللاعب الأسعار هدف الدوري"
    records = list(label_documents(model, [Document(both, id="1"), Document("", id="2")], LabelOptions()))
    handle = io.BytesIO()
    assert write_record_bytes(iter(records), "parquet", handle) == 2
    handle.seek(0)
    read = pq.read_table(handle).to_pylist()
    assert [row["labels"] for row in read] == [records[0]["labels"], []]
    assert read[0]["labels_ar"] == records[0]["labels_ar"]


def test_a_label_map_renames_every_label_of_a_list_and_drops_those_it_does_not_list():
    from collections import Counter

    from qism.recipe import LabelMap

    mapping = LabelMap.from_dict(
        {"labels": {"sport": {"name": "رياضة", "from": ["sports"]}, "money": {"name": "اقتصاد", "from": ["economy"]}}},
        "test map",
    )
    docs = [
        Document("نص", "sports", labels=("sports", "economy")),
        Document("نص آخر", "security", labels=("security", "economy")),
        Document("نص ثالث", "security", labels=("security", "culture")),
    ]
    unmapped = Counter()
    mapped = [doc for _, doc in mapping.apply((("f.jsonl", doc) for doc in docs), unmapped)]
    assert [(doc.label, doc.labels) for doc in mapped] == [("sport", ("sport", "money")), ("money", ())]
    assert unmapped == {"f.jsonl:security": 1}  # the document dropped, by its first label


def test_two_multi_label_models_side_by_side_compare_their_own_figures(cli_model, tmp_path):
    folder, _ = cli_model
    test, _ = write_corpus(tmp_path, documents(200, seed=9))
    result = run("evaluate", folder / "m1", test, "--against", folder / "m1", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"} <= set(metrics)
    assert "accuracy" not in metrics and metrics["micro_f1"]["difference"] == 0
    table = run("evaluate", folder / "m1", test, "--against", folder / "m1").stdout
    assert [line.split()[0] for line in table.splitlines()[3:5]] == ["micro-F1", "macro-F1"]
