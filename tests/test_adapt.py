"""A newsroom's own model: `qism train --base`, `--unlabeled`, `qism select`, `--label-map` on evaluate and
predict. The articles are data/sample's (written for qism), so no corpus is needed."""

import csv
import json

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import SAMPLE, SPORTS, assert_user_error, run
from qism.corpus import read_source


@pytest.fixture(scope="module")
def sample_articles():
    """data/sample's articles as (text, display name of the section)."""
    return [(doc.text, doc.label) for doc in read_source(SAMPLE)]


def write_sheet(path, rows, header=("id", "text", "label")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_lbfgs_finds_the_minimum_of_a_quadratic():
    from qism.classifier import lbfgs

    rng = np.random.default_rng(0)
    A = rng.normal(size=(30, 30))
    H, b = A @ A.T + np.eye(30), rng.normal(size=30)
    x = lbfgs(lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b), np.zeros(30), max_iter=500)
    assert np.allclose(x, np.linalg.solve(H, b), atol=1e-3)


def test_a_strong_prior_keeps_the_base_weights_and_a_weak_one_fits_the_articles():
    from qism.classifier import fit_toward_prior

    rng = np.random.default_rng(1)
    X = sp.csr_matrix(rng.random((40, 6)) * (rng.random((40, 6)) < 0.7))
    y = (X[:, 0].toarray().ravel() > X[:, 1].toarray().ravel()).astype(int)
    prior = np.asarray([[0, 0, 3, 0, 0, 0], [0, 0, 0, 3, 0, 0]], dtype=np.float32)
    kept, _ = fit_toward_prior(X, y, prior, np.zeros(2), 1e4)
    assert np.abs(kept - prior).max() < 0.01
    learned, bias = fit_toward_prior(X, y, prior, np.zeros(2), 1e-4)
    assert np.mean((X @ learned.T + bias).argmax(axis=1) == y) > 0.9
    assert np.abs(learned - prior).max() > 1


def test_select_then_train_on_the_default_model_then_predict(sample_articles, tmp_path):
    """The loop a newsroom runs with a plain install: select, fill labels, train --base, predict."""
    pool = write_sheet(tmp_path / "pool.csv", [(text,) for text, _ in sample_articles], header=("نص",))
    sheet = tmp_path / "sheet.csv"
    result = run("select", "--model", "default", "--input", pool, "-n", 40, "--output", sheet)
    assert result.exit_code == 0, result.output
    with open(sheet, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40 and list(rows[0]) == ["id", "excerpt", "guess", "guess_name", "guess_score", "label", "text"]
    assert all(row["label"] == "" for row in rows) and len({row["text"] for row in rows}) == 40
    truth = dict(sample_articles)
    ids = {label: name for label, name in json.loads(run("info", "--json").stdout)["label_names"].items()}
    by_name = {name: label for label, name in ids.items()}
    for i, row in enumerate(rows):  # ids and display names mixed, two rows left empty
        name = truth[row["text"]]
        row["label"] = "" if i < 2 else name if i % 2 else by_name.get(name, name)
    with open(sheet, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run("train", sheet, "--base", "default", "--out", tmp_path / "mine", "--json")
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["dropped"]["no_label"] == 2 and sum(card["labels"].values()) == 38
    assert set(card["labels"]) <= set(ids) and card["base"]["name"] == "default"
    assert card["base"]["card_sha256"] == json.loads(run("info", "--json").stdout)["card_sha256"]
    assert "base      default" in run("info", tmp_path / "mine").stdout
    result = run("predict", "--model", tmp_path / "mine", "--input", pool, "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    right = sum(ids.get(r["label"]) == truth[text] for r, (text, _) in zip(records, sample_articles))
    assert len(records) == len(sample_articles) and right / len(records) > 0.8


def test_sections_the_base_does_not_have_are_learned_and_unnamed_ones_dropped(sample_articles, tmp_path):
    security = [text for text, label in sample_articles if label == "أمن"]
    sports = [text for text, label in sample_articles if label == "رياضة"]
    health = [text for text, label in sample_articles if label == "صحة"]
    rows = [(f"s{i}", t, "حوادث") for i, t in enumerate(security)]
    rows += [(f"r{i}", t, "sports") for i, t in enumerate(sports)]
    rows += [("h0", health[0], "صحة")]  # a section named once still counts
    sheet = write_sheet(tmp_path / "mine.csv", rows)
    model = json.loads(run("train", sheet, "--base", "default", "--out", tmp_path / "m", "--json").stdout)
    assert model["labels"] == {"health": 1, "sports": len(sports), "حوادث": len(security)}
    assert model["base"]["sections_new"] == ["حوادث"] and model["label_names"]["sports"] == "رياضة"
    kept = json.loads(
        run("train", sheet, "--base", "default", "--keep-base-labels", "--out", tmp_path / "k", "--json").stdout
    )
    assert len(kept["labels"]) == 10 + 1 and kept["labels"]["economy"] == 0  # the base has ten
    predicted = json.loads(run("predict", "--model", tmp_path / "m", SPORTS, "--format", "json").stdout)
    assert predicted[0]["label"] == "sports"


def test_a_file_of_guesses_and_options_that_do_not_apply_are_one_line(tiny_model_dir, tmp_path):
    guesses = tmp_path / "labels.csv"
    run("predict", "--model", "default", SPORTS, "اعتقلت الشرطة عصابة", "--format", "csv", "--output", guesses)
    assert_user_error(run("train", guesses, "--base", "default", "--out", tmp_path / "m"), "guesses")
    sheet = write_sheet(tmp_path / "a.csv", [("1", SPORTS, "sports"), ("2", "ارتفعت الأسعار", "economy")])
    assert_user_error(run("train", sheet, "--base", "default", "--C", 2, "--out", tmp_path / "m"), "--C")
    assert_user_error(run("train", sheet, "--unlabeled", sheet, "--out", tmp_path / "m"), "--base")
    one = write_sheet(tmp_path / "one.csv", [("1", SPORTS, "sports"), ("2", SPORTS + " اليوم", "sports")])
    assert_user_error(run("train", one, "--base", "default", "--out", tmp_path / "m"), "single section")
    assert not (tmp_path / "m").exists()


def test_unlabeled_articles_are_used_only_where_they_help_and_the_card_says_which(sample_articles, tmp_path):
    labeled = [(str(i), text, label) for i, (text, label) in enumerate(sample_articles) if i % 3 == 0]
    sheet = write_sheet(tmp_path / "labeled.csv", labeled)
    pool = write_sheet(tmp_path / "pool.csv", [(t,) for i, (t, _) in enumerate(sample_articles) if i % 3], ("text",))
    result = run("train", sheet, "--base", "default", "--unlabeled", pool, "--out", tmp_path / "m", "--json")
    record = json.loads(result.stdout)["base"]["self_training"]
    assert record["unlabeled"] == len(sample_articles) - len(labeled)
    f1 = record["cv_macro_f1"]
    assert f1["with"] >= f1["without"] if record["used"] else record["added"] == 0
    assert "unlabeled " in run("info", tmp_path / "m").stdout


def test_the_same_articles_and_seed_give_the_same_model_byte_for_byte(sample_articles, tmp_path):
    sheet = write_sheet(tmp_path / "s.csv", [(str(i), t, label) for i, (t, label) in enumerate(sample_articles[:40])])
    for name in ("a", "b"):
        assert run("train", sheet, "--base", "default", "--out", tmp_path / name).exit_code == 0
    for file in ("arrays.npz", "pipeline.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_select_takes_one_of_many_copies_of_a_story(sample_articles, tmp_path):
    story = sample_articles[0][0]
    texts = [f"{story} {i}" for i in range(30)] + [text for text, _ in sample_articles[1:]]
    pool = write_sheet(tmp_path / "pool.csv", [(str(i), t, "ignored") for i, t in enumerate(texts)])
    sheet = tmp_path / "sheet.csv"
    assert run("select", "-m", "default", "-i", pool, "-n", 10, "-o", sheet).exit_code == 0
    with open(sheet, encoding="utf-8-sig", newline="") as handle:
        chosen = [row["text"] for row in csv.DictReader(handle)]
    assert len(chosen) == 10 and sum(text.startswith(story) for text in chosen) <= 1


def test_select_names_a_missing_extra_and_a_wrong_sheet_name(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_openpyxl(name, *args, **kwargs):
        if name == "openpyxl":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openpyxl)
    pool = write_sheet(tmp_path / "pool.csv", [("1", SPORTS, "")])
    assert_user_error(run("select", "-m", "default", "-i", pool, "-o", tmp_path / "s.xlsx"), "qism[xlsx]")
    assert_user_error(run("select", "-m", "default", "-i", pool, "-o", tmp_path / "s.txt"), ".csv or an .xlsx")


def test_evaluate_and_predict_in_a_newsrooms_sections(sample_articles, tmp_path):
    label_map = tmp_path / "ours.toml"
    label_map.write_text(
        '[labels.politics]\nname = "سياسة"\nfrom = ["arab_affairs", "دوليات"]\n'
        '[labels.sport]\nname = "ملاعب"\nfrom = ["sports"]\n',
        encoding="utf-8",
    )
    merged = {"شؤون عربية": "سياسة", "دوليات": "سياسة", "رياضة": "ملاعب"}
    data = write_sheet(
        tmp_path / "d.csv", [(str(i), t, merged.get(label, label)) for i, (t, label) in enumerate(sample_articles)]
    )
    plain = json.loads(run("predict", "-m", "default", "--input", data, "--format", "json", "-k", 10).stdout)
    ours = json.loads(
        run("predict", "-m", "default", "--input", data, "--format", "json", "-k", 10, "--label-map", label_map).stdout
    )
    for before, after in zip(plain, ours):
        scores = {entry["label"]: entry["score"] for entry in before["top"]}
        mine = {entry["label"]: entry["score"] for entry in after["top"]}
        assert mine["politics"] == pytest.approx(scores["arab_affairs"] + scores["international"], abs=2e-4)
        assert mine["sport"] == pytest.approx(scores["sports"], abs=2e-4) and "arab_affairs" not in mine
    result = json.loads(run("evaluate", "default", data, "--label-map", label_map, "--json").stdout)
    assert {"politics", "sport", "economy"} <= set(result["per_label"]) and result["labels_unknown_to_model"] == []
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[labels.x]\nfrom = ["weather"]\n', encoding="utf-8")
    assert_user_error(run("evaluate", "default", data, "--label-map", wrong), "weather")


def test_an_xlsx_sheet_goes_back_into_training_as_it_is(sample_articles, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    pool = write_sheet(tmp_path / "pool.csv", [(str(i), t) for i, (t, _) in enumerate(sample_articles)], ("id", "text"))
    sheet = tmp_path / "sheet.xlsx"
    assert run("select", "-m", "default", "-i", pool, "-n", 30, "-o", sheet).exit_code == 0
    book = openpyxl.load_workbook(sheet)
    rows = book.active
    header = [cell.value for cell in rows[1]]
    truth = {str(i): label for i, (_, label) in enumerate(sample_articles)}
    for row in rows.iter_rows(min_row=2):
        row[header.index("label")].value = truth[str(row[header.index("id")].value)]
    book.save(sheet)
    card = json.loads(run("train", sheet, "--base", "default", "--out", tmp_path / "m", "--json").stdout)
    assert sum(card["labels"].values()) == 30 and set(card["label_names"].values()) <= set(truth.values())
