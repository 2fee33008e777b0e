import codecs
import csv
import io
import json
import re
import sys
from html.parser import HTMLParser

import pytest
from conftest import SAMPLE, assert_user_error, run
from qism import QismError, TrainConfig, train
from qism import report as report_module
from qism.config import REPORT_LANGUAGES
from qism.evaluation import compare
from qism.model import load_model
from qism.recipe import LabelMap


def needs_pictures():
    pytest.importorskip("matplotlib")
    try:
        report_module.require_picture_packages()
    except QismError as err:
        pytest.skip(str(err))


def test_report_without_matplotlib_says_what_to_install(sample_model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(QismError, match=r"needs matplotlib.*pip install 'qism\[report\]'"):
        report_module.require_picture_packages()
    result = run("evaluate", sample_model_dir, SAMPLE, "--report", tmp_path / "report")
    assert result.exit_code == 1 and "pip install 'qism[report]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "report").exists()


def test_old_matplotlib_needs_the_arabic_shapers(monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(report_module, "_matplotlib_lays_out_arabic", lambda: False)
    monkeypatch.setitem(sys.modules, "bidi", None)
    with pytest.raises(QismError, match="python-bidi"):
        report_module.require_picture_packages()


def test_arabic_is_joined_and_reordered_for_an_old_matplotlib(monkeypatch):
    pytest.importorskip("arabic_reshaper")
    pytest.importorskip("bidi")
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(report_module, "_matplotlib_lays_out_arabic", lambda: False)
    shaped = report_module._shaped("شؤون عربية")
    assert all("\ufe70" <= ch <= "\ufeff" or ch == " " for ch in shaped)  # presentation forms: joined letters
    assert report_module._shaped("middleEast") == "middleEast"


def test_report_is_self_contained(sample_model_dir, tmp_path):
    needs_pictures()
    out = tmp_path / "report"
    result = run("evaluate", sample_model_dir, SAMPLE, "--report", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["documents"] == 112  # stdout stays JSON; the report path goes to stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion_matrix.png",
        "mistakes.csv",
        "per_label.csv",
        "report.html",
    ]
    assert (out / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 3
    assert not re.search(r'(src|href)="(https?:|file:|//)', page) and "<link" not in page and "<script" not in page
    assert '<html lang="en" dir="ltr">' in page and "شؤون عربية" in page
    for section in (
        "Scores and counts per label",
        "Calibration and coverage",
        "threshold (",
        "Most confident mistakes",
    ):
        assert section in page
    data = (out / "per_label.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 8 and {"أمن", "صحة"} <= {r["label"] for r in rows}
    assert sum(int(r["predicted"]) for r in rows) == 112


def test_report_lists_the_most_confident_mistakes_with_their_terms(tiny, tmp_path):
    needs_pictures()
    swapped = tmp_path / "swapped"
    for label, other in (("sports", "economy"), ("economy", "sports")):
        (swapped / other).mkdir(parents=True)
        (swapped / other / "1.txt").write_bytes((tiny / label / "01.txt").read_bytes())
    model_dir = tmp_path / "m"
    train([tiny], TrainConfig(test_size=0, min_df=1)).save(model_dir)
    result = run("evaluate", model_dir, swapped, "--report", tmp_path / "r")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    mistakes = page.split("Most confident mistakes")[1]
    assert mistakes.count("<tr>") == 3  # header and both articles
    assert "سجل المهاجم هدفين" in mistakes and mistakes.count('<li class="chip">') >= 2
    assert "its card has no held-out scores" in page  # trained on all its data (test_size=0)


# --- a model with display names, evaluated on news from two outlets ------------------------------

#: The tiny corpus's labels and the display names a label map gives them.
DISPLAY_NAMES = {"sports": "رياضة", "economy": "اقتصاد", "security": "أمن"}
#: What an evaluation file may start a cell with that a spreadsheet would run as a formula.
FORMULA = "=1+1 "


@pytest.fixture(scope="module")
def named_model(tmp_path_factory, tiny):
    label_map = LabelMap.from_dict(
        {"labels": {label: {"name": name, "from": [label]} for label, name in DISPLAY_NAMES.items()}}
    )
    directory = tmp_path_factory.mktemp("models") / "newsroom"
    train([tiny], TrainConfig(min_df=1, test_size=0.34), label_map=label_map, name="newsroom").save(directory)
    return directory


@pytest.fixture(scope="module")
def outlet_news(tmp_path_factory, tiny):
    """The tiny articles under their labels from two outlets, plus mistakes: one sports text filed
    twice under two wrong labels, and one wrong text with a formula-like start and id."""
    records = [
        {
            "id": f"{label}-{path.stem}",
            "text": path.read_text(encoding="utf-8"),
            "label": label,
            "source": "alpha" if int(path.stem) % 2 else "beta",
        }
        for label in ("economy", "security", "sports")
        for path in sorted((tiny / label).glob("*.txt"))
    ]
    sports = (tiny / "sports" / "02.txt").read_text(encoding="utf-8")
    records += [
        {"id": "twice-1", "text": sports, "label": "economy", "source": "alpha"},
        {"id": "twice-2", "text": sports, "label": "security", "source": "beta"},
        {
            "id": "=cmd",
            "text": FORMULA + (tiny / "sports" / "03.txt").read_text(encoding="utf-8"),
            "label": "economy",
            "source": "beta",
        },
    ]
    path = tmp_path_factory.mktemp("news") / "news.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path, records


@pytest.fixture(scope="module")
def reports(named_model, outlet_news, tmp_path_factory):
    """The report in each language, with the evaluation's scores and the texts the CLI drew in its pictures."""
    needs_pictures()
    drawn, shaped = {}, report_module._shaped
    made = {}
    for lang in REPORT_LANGUAGES:
        out = tmp_path_factory.mktemp(f"report-{lang}")
        texts = drawn[lang] = []
        report_module._shaped = lambda text, texts=texts: texts.append(text) or shaped(text)
        try:
            result = run("evaluate", named_model, outlet_news[0], "--report", out, "--lang", lang, "--json")
        finally:
            report_module._shaped = shaped
        assert result.exit_code == 0, result.output
        made[lang] = {
            "dir": out,
            "page": (out / "report.html").read_text(encoding="utf-8"),
            "scores": json.loads(result.stdout),
            "drawn": drawn[lang],
        }
    return made


class _Tables(HTMLParser):
    """The cells' text of every table after each h2 heading."""

    def __init__(self):
        super().__init__()
        self.tables, self.heading, self.cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self.heading = ""
        elif tag == "tr":
            self.tables.setdefault(self.section, []).append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self.section, self.heading = self.heading, None
        elif tag in ("td", "th"):
            self.tables[self.section][-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.heading is not None:
            self.heading += data
        if self.cell is not None:
            self.cell += data


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def test_arabic_report_is_right_to_left_with_display_names(reports):
    page = reports["ar"]["page"]
    assert '<html lang="ar" dir="rtl">' in page
    found = tables(page)
    assert {"النموذج", "النتائج", "النتائج والأعداد حسب القسم", "الأخطاء التي كان النموذج أكثر ثقة بها"} <= set(found)
    per_label = found["النتائج والأعداد حسب القسم"]
    assert per_label[0][:4] == ["القسم", "الفعلي", "المتوقع", "الفرق"]
    assert {row[0] for row in per_label[1:]} == set(DISPLAY_NAMES.values())  # display names, not the ids
    assert "sports" not in "".join(map(str, per_label))
    numbers = re.findall(r'<td class="number">(.{0,20})', page)
    assert numbers and all(n.startswith('<bdi dir="ltr">') for n in numbers)  # bidi cannot reorder "-3" or "12%"
    assert {"مصفوفة الالتباس", "القسم المتوقع", "رياضة", "نسبة الصواب"} <= set(reports["ar"]["drawn"])
    assert "Confusion matrix" in reports["en"]["drawn"] and "رياضة" not in reports["en"]["drawn"]


def test_report_shows_the_model_and_its_card_scores(reports, named_model, tiny):
    page, scores = reports["en"]["page"], reports["en"]["scores"]
    card = json.loads((named_model / "card.json").read_text(encoding="utf-8"))
    assert "<h1>Evaluation of the model <bdi>newsroom</bdi></h1>" in page and "news.jsonl" in page
    assert card["created"].replace("T", " ")[:16] in page and "qism " + card["versions"]["qism"] in page
    model = tables(page)["The model"]
    assert model[1:] == [[str(tiny), str(len(list(tiny.glob("*/*.txt"))))]]  # the training source, its articles
    assert "classifier " + card["config"]["classifier"] in page and "min_df 1" in page
    rows = {row[0]: row[1:] for row in tables(page)["Scores"]}
    assert rows["this evaluation"][:2] == [f"{scores['documents']:,}", f"{scores['accuracy']:.1%}"]
    held_out = card["scores"]
    assert rows["held out at training (the model card)"] == [
        f"{held_out['documents']:,}",
        f"{held_out['accuracy']:.1%}",
        f"{held_out['macro_f1']:.1%}",
        f"{held_out['expected_calibration_error']:.3f}",
    ]


def test_report_counts_predicted_against_actual(reports, outlet_news):
    scores, records = reports["en"]["scores"], outlet_news[1]
    matrix = scores["confusion_matrix"]
    rows = {row[0]: row for row in tables(reports["en"]["page"])["Scores and counts per label"][1:]}
    for i, label in enumerate(matrix["labels"]):
        actual = sum(r["label"] == label for r in records)
        predicted = sum(row[i] for row in matrix["rows_true_columns_predicted"])
        assert rows[label][2:5] == [str(actual), str(predicted), f"{predicted - actual:+}"]
    assert rows["sports"][1] == "رياضة"  # the English page names labels by id, display names beside them


def test_report_breaks_scores_down_per_outlet(reports, outlet_news):
    records = outlet_news[1]
    by_outlet = reports["en"]["scores"]["by_outlet"]
    assert {outlet: row["documents"] for outlet, row in by_outlet.items()} == {
        outlet: sum(r["source"] == outlet for r in records) for outlet in ("alpha", "beta")
    }
    rows = tables(reports["en"]["page"])["Scores per outlet"]
    assert rows[1:] == [
        [outlet, str(row["documents"]), f"{row['accuracy']:.1%}", f"{row['macro_f1']:.1%}"]
        for outlet, row in by_outlet.items()
    ]
    assert "الوسيلة" in tables(reports["ar"]["page"])["النتائج حسب الوسيلة الإعلامية"][0]


def test_mistakes_csv_lists_every_mistake_once_and_safely(reports, named_model, outlet_news):
    records = outlet_news[1]
    predicted = load_model(named_model).predict([r["text"] for r in records])
    wrong = {" ".join(r["text"].split()) for r, p in zip(records, predicted) if p != r["label"]}
    for lang, twice in (("en", "economy; security"), ("ar", "اقتصاد; أمن")):
        data = (reports[lang]["dir"] / "mistakes.csv").read_bytes()
        assert data.startswith(codecs.BOM_UTF8)
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        assert list(rows[0]) == ["id", "true", "predicted", "score", "terms", "excerpt"]
        assert len(rows) == len(wrong) >= 2
        assert {row["id"] for row in rows} >= {"twice-1; twice-2", "'=cmd"}
        assert next(row for row in rows if row["id"] == "twice-1; twice-2")["true"] == twice
        formula = next(row for row in rows if row["id"] == "'=cmd")
        assert formula["excerpt"].startswith("'" + FORMULA.strip()) and formula["terms"]
        assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    page = reports["en"]["page"].split("Most confident mistakes")[1]
    sports = " ".join(records[-2]["text"].split())[:40]
    assert page.count(sports) == 1 and "twice-1" in page and "twice-2" in page


def test_small_sets_show_each_threshold_once(reports):
    by_threshold = reports["en"]["scores"]["by_threshold"]
    thresholds = [row["threshold"] for row in by_threshold]
    assert len(set(thresholds)) < len(thresholds)  # the case the table must not repeat
    rows = tables(reports["en"]["page"])["Calibration and coverage"][1:]
    assert [row[0] for row in rows] == [f"{t:.3f}" for t in dict.fromkeys(thresholds)]


def test_crowded_plot_points_are_labeled_once():
    points = [(0.5, 0.5), (0.52, 0.51), (0.9, 0.5), (0.5, 0.9), (0.5, 0.5)]
    assert report_module.spaced_out(points) == [True, False, True, True, False]


def test_every_report_language_has_all_the_strings():
    assert set(report_module.STRINGS) == set(REPORT_LANGUAGES)
    english = set(report_module.STRINGS["en"])
    assert all(set(strings) == english for strings in report_module.STRINGS.values())


def test_unknown_report_language_is_refused_in_one_line(sample_model_dir, tmp_path):
    result = run("evaluate", sample_model_dir, SAMPLE, "--report", tmp_path / "r", "--lang", "fr")
    assert_user_error(result, "--lang is one of en, ar; got 'fr'")
    assert not (tmp_path / "r").exists()


def test_compare_puts_two_models_side_by_side():
    first = {
        "documents": 10,
        "accuracy": 0.8,
        "macro_f1": 0.7,
        "expected_calibration_error": 0.05,
        "per_label": {"a": {"f1": 0.6}, "b": {"f1": 0.8}},
        "by_threshold": [{"target_coverage": 0.9, "accuracy": 0.85}],
    }
    second = {"documents": 10, "accuracy": 0.9, "macro_f1": 0.75, "per_label": {"b": {"f1": 0.9}, "c": {"f1": 0.5}}}
    comparison = compare(first, second, ["one", "two"])
    assert comparison["models"] == ["one", "two"] and comparison["documents"] == 10
    assert comparison["metrics"]["accuracy"]["values"] == [0.8, 0.9]
    assert comparison["metrics"]["accuracy"]["difference"] == pytest.approx(0.1)
    assert comparison["metrics"]["expected_calibration_error"] == {"values": [0.05, None], "difference": None}
    assert comparison["metrics"]["accuracy_at_coverage_90"]["values"] == [0.85, None]
    assert list(comparison["per_label_f1"]) == ["a", "b", "c"]
    assert comparison["per_label_f1"]["b"]["difference"] == pytest.approx(0.1)


def test_evaluate_against_a_second_model(tiny, tiny_model_dir, tmp_path):
    weaker = tmp_path / "weaker"
    train([tiny], TrainConfig(test_size=0, min_df=1, C=0.01, classifier="complement_nb")).save(weaker)
    result = run("evaluate", tiny_model_dir, tiny, "--against", weaker, "--json")
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)
    assert comparison["models"] == [str(tiny_model_dir), str(weaker)] and comparison["documents"] == 18
    assert len(comparison["metrics"]["macro_f1"]["values"]) == 2
    assert set(comparison["per_label_f1"]) == {"economy", "security", "sports"}
    table = run("evaluate", tiny_model_dir, tiny, "--against", weaker).stdout
    assert "difference" in table and "F1 sports" in table and str(weaker) in table
