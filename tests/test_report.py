import codecs
import csv
import io
import json
import re
import sys

import pytest
from typer.testing import CliRunner

from training import QismError, TrainConfig, train
from training import report as report_module
from training.cli import app
from training.evaluation import compare

from conftest import SAMPLE

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


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


def test_report_is_self_contained_with_arabic_labels(sample_model_dir, tmp_path):
    needs_pictures()
    out = tmp_path / "report"
    result = run("evaluate", sample_model_dir, SAMPLE, "--report", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["documents"] == 112  # stdout stays JSON; the report path goes to stderr
    assert sorted(p.name for p in out.iterdir()) == ["confusion_matrix.png", "per_label.csv", "report.html"]
    assert (out / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 3
    assert not re.search(r'(src|href)="(https?:|file:|//)', page) and "<link" not in page and "<script" not in page
    assert 'dir="rtl" lang="ar"' in page and "شؤون عربية" in page
    for section in ("Scores per label", "Calibration and coverage", "threshold (--threshold)", "Most confident mistakes"):
        assert section in page
    data = (out / "per_label.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 8 and {"أمن", "صحة"} <= {r["label"] for r in rows}


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
    assert "سجل المهاجم هدفين" in mistakes and "(0." in mistakes


def test_compare_puts_two_models_side_by_side():
    first = {"documents": 10, "accuracy": 0.8, "macro_f1": 0.7, "expected_calibration_error": 0.05,
             "per_label": {"a": {"f1": 0.6}, "b": {"f1": 0.8}},
             "by_threshold": [{"target_coverage": 0.9, "accuracy": 0.85}]}
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
