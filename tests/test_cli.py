import csv
import io
import json
import subprocess
import sys

import pytest
from conftest import ECONOMY, ROOT, SPORTS, assert_user_error, run


def test_help_documents_every_command():
    result = run("--help")
    assert result.exit_code == 0, result.output
    for command in ("train", "evaluate", "predict", "info", "serve"):
        assert command in result.output


def test_train_then_info_and_evaluate(tiny, tmp_path):
    out = tmp_path / "m"
    result = run("train", tiny, "--out", out, "--test-size", "0.34", "--min-df", "1", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "saved" in result.output and "macro-F1" in result.output
    info = json.loads(run("info", out, "--json").output)
    assert info["labels"] == {"economy": 6, "security": 6, "sports": 6}
    assert "economy (6)" in run("info", out).output
    scores = json.loads(run("evaluate", out, tiny, "--json").output)
    assert scores["documents"] == 18 and scores["accuracy"] > 0.8
    assert set(scores["per_label"]) == {"economy", "security", "sports"}
    assert len(scores["confusion_matrix"]["rows_true_columns_predicted"]) == 3


def test_train_json_prints_the_card(tiny, tmp_path):
    result = run(
        "train", tiny, "--out", tmp_path / "m", "--test-size", "0", "--min-df", "1", "--json", "--classifier", "logreg"
    )
    assert json.loads(result.output)["config"]["classifier"] == "logreg"


def test_predict_arguments_json_top_k(tiny_model_dir):
    result = run("predict", SPORTS, ECONOMY, "--model", tiny_model_dir, "--format", "json", "--top-k", "2")
    records = json.loads(result.output)
    assert [r["label"] for r in records] == ["sports", "economy"]
    assert all(len(r["top"]) == 2 and r["top"][0]["label"] == r["label"] for r in records)
    assert "\\u" not in result.output


def test_predict_table_is_readable_arabic(sample_model_dir):
    result = run("predict", "اعتقلت الشرطة عصابة لتهريب المخدرات عبر الحدود", "--model", sample_model_dir)
    assert result.exit_code == 0 and "label" in result.output.splitlines()[0]
    assert "أمن" in result.output


def test_predict_stdin_lines_jsonl_keeps_order_and_ids(tiny_model_dir):
    result = run(
        "predict", "-", "--lines", "--model", tiny_model_dir, "--format", "jsonl", input=f"{SPORTS}\n{ECONOMY}\n\n"
    )
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["id"] for r in records] == ["1", "2", "3"]
    assert [r["label"] for r in records[:2]] == ["sports", "economy"]


def test_predict_input_file_csv_output(tiny_model_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(json.dumps({"id": f"a{i}", "text": t}, ensure_ascii=False) for i, t in enumerate([SPORTS, ECONOMY])),
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    result = run("predict", "--input", source, "--model", tiny_model_dir, "--format", "csv", "--output", out)
    assert result.exit_code == 0 and result.output == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["id"], r["label"]) for r in rows] == [("a0", "sports"), ("a1", "economy")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".out.csv.qism-run.json",
        "in.jsonl",
        "out.csv",
    ]  # no temporary file


def test_user_mistakes_are_one_line_and_write_nothing(tiny, tiny_model_dir, tmp_path):
    (tmp_path / "x.docx").write_bytes(b"PK")
    (tmp_path / "empty").mkdir()
    (tmp_path / "one" / "sports").mkdir(parents=True)
    (tmp_path / "one" / "sports" / "1.txt").write_text(SPORTS, encoding="utf-8")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    out = tmp_path / "out"
    cases = [
        (("train", tmp_path / "missing", "--out", out), "no such file"),
        (("train", tmp_path / "x.docx", "--out", out), "unknown format"),
        (("train", tmp_path / "empty", "--out", out), "no .txt articles"),
        (("train", tmp_path / "one", "--out", out, "--test-size", "0"), "single label"),
        (("train", tmp_path / "t.csv", "--out", out, "--text-column", "story"), "no column 'story'"),
        (("predict", SPORTS, "--model", tmp_path / "no-model"), "no model folder"),
        (("evaluate", tmp_path / "no-model", tiny), "no model folder"),
        (("predict", SPORTS, "--model", tiny_model_dir, "--format", "xml"), "--format"),
        (("train", tiny, "--out", out, "--word-ngrams", "x"), "--word-ngrams"),
        (("predict", tmp_path / "t.csv", "--model", tiny_model_dir), "use --input"),
    ]
    for args, fragment in cases:
        assert_user_error(run(*args), fragment)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "one", "t.csv", "x.docx"]


def test_evaluate_script_matches_cli(tiny_model_dir, tiny):
    script = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), str(tiny_model_dir), str(tiny), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert script.returncode == 0, script.stderr
    assert json.loads(script.stdout) == json.loads(run("evaluate", tiny_model_dir, tiny, "--json").output)


def test_default_model_is_used_without_model_option():
    from qism.model import DEFAULT_MODEL_PLACES

    if not any((place / "card.json").is_file() for place in DEFAULT_MODEL_PLACES):
        pytest.skip("no default model installed")
    page = (ROOT / "tests" / "fixtures" / "news_page.txt").read_text(encoding="utf-8")
    [record] = json.loads(run("predict", page, "--format", "json", "--top-k", "2").stdout)
    assert (record["label"], record["label_ar"]) == ("arab_affairs", "شؤون عربية")
    assert 0.5 < record["top"][0]["score"] <= 1
    assert "the default model" in run("info").stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--C", "0"], "--C"),
        (["--C", "nan"], "--C"),
        (["--C", "1e300"], "--C"),  # SGD's updates overflowed: a traceback
        (["--C", "1e-300"], "--C"),
        (["--nb-scaling", "1e300"], "--nb-scaling"),  # NB ratios of infinity: a traceback
        (["--nb-scaling", "1e-300"], "--nb-scaling"),
        (["--word-ngrams", "3,1"], "--word-ngrams"),
        (["--seed", "-3"], "--seed"),
        (["--max-features", "-1"], "--max-features"),
        (["--jobs", "0"], "--jobs"),
    ],
)
def test_bad_training_options_are_one_line_before_any_reading(tmp_path, args, fragment):
    missing = tmp_path / "no-such-corpus"  # never read: the option is refused first
    assert_user_error(run("train", missing, "--out", tmp_path / "m", *args), fragment)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_a_port_out_of_range_is_one_line(port):
    assert_user_error(run("serve", "--port", port), "--port takes a whole number from 0 to 65,535")


def test_a_recipe_with_a_bad_value_is_one_line(tiny, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'sources = ["{tiny}"]\n[train]\nword_ngrams = [3, 1]\n', encoding="utf-8")
    assert_user_error(run("train", "--recipe", recipe, "--out", tmp_path / "m"), "--word-ngrams")


def test_recipe_read_options_survive_a_read_option_on_the_command_line(tmp_path):
    corpus = tmp_path / "c.csv"
    rows = [f"{SPORTS} {i},sports" if i % 2 else f"{ECONOMY} {i},economy" for i in range(40)]
    corpus.write_text("story,section\n" + "\n".join(rows) + "\n", encoding="utf-8")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'sources = ["{corpus}"]\n[read]\ntext_column = "story"\nlabel_column = "section"\n[train]\ntest_size = 0\n',
        encoding="utf-8",
    )
    result = run("train", "--recipe", recipe, "--errors", "replace", "--out", tmp_path / "m", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == {"economy": 20, "sports": 20}


def test_an_article_that_starts_with_a_dash_is_labeled(tiny_model_dir):
    page = "- الرئيسية\n" + SPORTS
    for args in ([page], ["--", page]):
        result = run("predict", "--model", tiny_model_dir, "--format", "jsonl", *args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["label"] == "sports"


def test_each_command_takes_its_defaults_from_the_one_config():
    from qism.config import DEFAULT

    result = run("train", "--help")
    assert f"[default: {DEFAULT.lead_words}]" in result.output and "[default: 1,2]" in result.output


def test_each_command_is_thin():
    """A command parses, calls one library function and prints: its body stays short."""
    import ast

    import qism.cli

    tree = ast.parse(open(qism.cli.__file__, encoding="utf-8").read())
    commands = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command" for d in node.decorator_list)
    ]
    assert len(commands) >= 4
    for command in commands:
        body = command.body[1:] if isinstance(command.body[0].value, ast.Constant) else command.body  # the docstring
        statements = sum(isinstance(node, ast.stmt) for part in body for node in ast.walk(part))
        assert statements <= 15, f"{command.name}: {statements} statements"
