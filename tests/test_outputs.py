"""What `qism predict` writes for people and spreadsheets: CSV columns, ids and kept input columns in
every format, an aligned table, cells that cannot inject formulas or terminal controls, and the
command line's own manners (--version, -h, help without loading scikit-learn, the --lines hint)."""

import csv
import io
import json
import re
import subprocess
import sys
from importlib.metadata import version

import pytest
from conftest import ECONOMY, ROOT, SPORTS, assert_user_error, run
from qism import LabelMap, TrainConfig, train
from qism.corpus import looks_like_one_per_line
from qism.errors import printable
from qism.output import display_width, spreadsheet_cell

SECURITY = "اعتقلت الشرطة عصابة لتهريب المخدرات عبر الحدود"
NAMES = {"sports": "رياضة", "economy": "اقتصاد", "security": "أمن"}
ARTICLES = [
    {"guid": "g-1", "title": "Cup final", "url": "https://example.org/1", "text": SPORTS},
    {"guid": "g-2", "title": "أسواق اليوم", "url": "https://example.org/2", "text": ECONOMY},
    {"guid": "g-3", "title": "", "url": "https://example.org/3", "text": SECURITY},
]


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result, *fragments):
    for fragment in fragments:
        assert_user_error(result, fragment)


@pytest.fixture(scope="module")
def named_model_dir(tmp_path_factory, tiny):
    """The tiny model with Arabic display names, as the default model has."""
    label_map = LabelMap.from_dict(
        {"labels": {label: {"name": name, "from": [label]} for label, name in NAMES.items()}}
    )
    directory = tmp_path_factory.mktemp("models") / "named"
    train([tiny], TrainConfig(test_size=0.0, min_df=1), label_map=label_map).save(directory)
    return directory


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def articles_csv(tmp_path):
    return write_csv(tmp_path / "news.csv", ARTICLES)


def csv_rows(text):
    return list(csv.reader(io.StringIO(text)))


def cells(line):
    """The cells of a table line (runs without two spaces in a row) and the display column each starts at."""
    return [
        (match.group().strip("\u2068\u2069"), display_width(line[: match.start()]))
        for match in re.finditer(r"\S+(?: \S+)*", line)
    ]


# --- CSV --------------------------------------------------------------------------------------


def test_csv_has_the_display_names_and_a_column_per_rank(named_model_dir, articles_csv):
    csv_out = ok(run("predict", "-m", named_model_dir, "-i", articles_csv, "-f", "csv", "-k", "3", "-q")).stdout
    records = json.loads(
        ok(run("predict", "-m", named_model_dir, "-i", articles_csv, "-f", "json", "-k", "3", "-q")).stdout
    )
    header, *rows = csv_rows(csv_out)
    assert header == [
        "id",
        "label",
        "label_ar",
        "score",
        "label_2",
        "label_ar_2",
        "score_2",
        "label_3",
        "label_ar_3",
        "score_3",
        "reason",
    ]
    assert [row[1] for row in rows] == ["sports", "economy", "security"]
    for row, record in zip(rows, records):
        by_name = dict(zip(header, row))
        assert by_name["label_ar"] == NAMES[by_name["label"]] == record["label_ar"]
        for rank, item in enumerate(record["top"], 1):
            suffix = "" if rank == 1 else f"_{rank}"
            assert (by_name[f"label{suffix}"], by_name[f"label_ar{suffix}"]) == (item["label"], item["label_ar"])
            assert float(by_name[f"score{suffix}"]) == item["score"]


def test_csv_header_depends_on_the_options_only(tiny_model_dir, tmp_path):
    """An empty first article (no scores) gives the header a normal one does, so --resume continues under it."""
    headers = []
    for first in ("", SPORTS):
        source = write_csv(tmp_path / "in.csv", [{"text": first}, {"text": ECONOMY}])
        out = ok(
            run("predict", "-m", tiny_model_dir, "-i", source, "-f", "csv", "-k", "2", "--explain", "2", "-q")
        ).stdout
        headers.append(csv_rows(out)[0])
    assert headers[0] == headers[1] == ["id", "label", "score", "label_2", "score_2", "reason", "terms"]


def test_labels_below_the_threshold_keep_the_best_guess(tiny_model_dir):
    out = ok(
        run("predict", "-m", tiny_model_dir, SPORTS, "-f", "csv", "--threshold", "1", "--unknown-label", "review")
    ).stdout
    [row] = [dict(zip(*csv_rows(out)))]
    assert row["label"] == "review" and "sports" in row["reason"] and float(row["score"]) < 1


# --- ids and kept input columns -------------------------------------------------------------


def table_records(text):
    """The table's rows by header name (cells matched to the header's columns by where they start)."""
    header, *lines = text.splitlines()
    starts = {start: name for name, start in cells(header)}
    return [{starts[start]: cell for cell, start in cells(line)} for line in lines]


@pytest.mark.parametrize("source", ["csv", "jsonl"])
def test_ids_and_kept_columns_reach_every_format(named_model_dir, articles_csv, tmp_path, source):
    if source == "jsonl":
        path = tmp_path / "news.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ARTICLES), encoding="utf-8")
    else:
        path = articles_csv
    args = (
        "predict",
        "-m",
        named_model_dir,
        "-i",
        path,
        "--id-column",
        "guid",
        "--keep-columns",
        "title,url",
        "-q",
        "-f",
    )
    wanted = [{"id": row["guid"], "title": row["title"], "url": row["url"]} for row in ARTICLES]

    def kept(records):
        return [{key: record.get(key, "") for key in ("id", "title", "url")} for record in records]

    assert kept(json.loads(ok(run(*args, "json")).stdout)) == wanted
    assert kept(json.loads(line) for line in ok(run(*args, "jsonl")).stdout.splitlines()) == wanted
    header, *rows = csv_rows(ok(run(*args, "csv")).stdout)
    assert header[-2:] == ["title", "url"]
    assert kept(dict(zip(header, row)) for row in rows) == wanted
    assert kept(table_records(ok(run(*args, "table")).stdout)) == wanted


def test_a_guid_column_is_an_id_column(tiny_model_dir, articles_csv):
    records = json.loads(ok(run("predict", "-m", tiny_model_dir, "-i", articles_csv, "-f", "json", "-q")).stdout)
    assert [record["id"] for record in records] == ["g-1", "g-2", "g-3"]


def test_columns_that_are_not_there_are_refused_naming_those_that_are(tiny_model_dir, articles_csv, tmp_path):
    jsonl = tmp_path / "news.jsonl"
    jsonl.write_text(json.dumps({"text": SPORTS, "link": "x"}) + "\n", encoding="utf-8")
    predict = ("predict", "-m", tiny_model_dir, "-q")
    one_line_error(
        run(*predict, "-i", articles_csv, "--keep-columns", "title,link"),
        "no column 'link' (--keep-columns)",
        "the columns are: guid, title, url, text",
    )
    one_line_error(run(*predict, "-i", articles_csv, "--id-column", "uuid"), "no column 'uuid' (--id-column)")
    one_line_error(run(*predict, "-i", jsonl, "--keep-columns", "url"), "no key 'url'", "the keys are: text, link")
    one_line_error(run(*predict, "-i", articles_csv, "--keep-columns", "label"), "'label' is a name qism's records use")
    one_line_error(run(*predict, "-i", articles_csv, "--keep-columns", "url,url"), "names 'url' twice")
    one_line_error(run(*predict, SPORTS, "--keep-columns", "url"), "not of articles given as arguments")
    one_line_error(run(*predict, "-", "--id-column", "guid", input=SPORTS), "not of standard input")


# --- the table --------------------------------------------------------------------------------


def test_the_table_lines_up_arabic_and_latin_by_display_width(named_model_dir, tmp_path):
    rows = [
        {"id": "a-1", "text": SPORTS},
        {"id": "مقال-٢٠", "text": ECONOMY},
        {"id": "x", "text": SECURITY + " " + ECONOMY},
    ]
    source = write_csv(tmp_path / "in.csv", rows)
    table = ok(run("predict", "-m", named_model_dir, "-i", source, "-k", "3", "--explain", "2", "-q")).stdout
    lines = table.splitlines()
    assert "\t" not in table and len(lines) == 4
    header = [name for name, _ in cells(lines[0])]
    assert header == [
        "id",
        "label",
        "label_ar",
        "score",
        "label_2",
        "label_ar_2",
        "score_2",
        "label_3",
        "label_ar_3",
        "score_3",
        "terms",
    ]
    starts = [[start for _, start in cells(line)] for line in lines]
    for line_starts in starts[1:]:
        assert line_starts[: len(header) - 1] == starts[0][: len(header) - 1]  # the terms run on in the last column
    assert any(_right_to_left(cell) for line in lines[1:] for cell, _ in cells(line))


def _right_to_left(text):
    return bool(re.search("[\u0600-\u06ff]", text))


def test_the_table_has_no_empty_columns_and_no_unknown_twice(named_model_dir, tiny_model_dir, tmp_path):
    one = ok(run("predict", "-m", named_model_dir, SPORTS)).stdout.splitlines()
    assert [name for name, _ in cells(one[0])] == ["id", "label", "label_ar", "score"]
    assert [cell for cell, _ in cells(one[1])] == ["1", "sports", "رياضة", cells(one[1])[3][0]]
    source = write_csv(tmp_path / "in.csv", [{"text": ""}, {"text": SPORTS}])
    for model in (named_model_dir, tiny_model_dir):
        table = ok(run("predict", "-m", model, "-i", source, "--threshold", "1", "-q")).stdout
        for line in table.splitlines()[1:]:
            assert line.count("unknown") == 1, line


def test_display_width_counts_terminal_cells():
    assert display_width("sports") == 6
    assert display_width("رياضة") == display_width("رِيَاضَةٌ") == 5  # vowel signs take no cell
    assert display_width("\u2068أمن\u2069") == 3
    assert display_width("新聞") == 4


# --- what a file can inject -------------------------------------------------------------------

HOSTILE_IDS = ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "ok"]


def test_formula_cells_are_neutralised():
    assert [spreadsheet_cell(value) for value in HOSTILE_IDS] == [
        "'=1+2",
        "'+cmd",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "ok",
    ]
    assert spreadsheet_cell(0.5) == 0.5


@pytest.fixture(scope="module")
def hostile_model_dir(tmp_path_factory):
    """A model whose labels came from a hostile corpus: a formula and terminal escapes."""
    folder = tmp_path_factory.mktemp("hostile")
    labels = ['=HYPERLINK("http://x")', "-\x1b]0;owned\x07red\x1b[31m"]  # labels lose tabs: spacing is normalized
    rows = [{"text": f"{SPORTS} {i}", "label": labels[0]} for i in range(12)]
    rows += [{"text": f"{ECONOMY} {i}", "label": labels[1]} for i in range(12)]
    directory = folder / "model"
    train([write_csv(folder / "corpus.csv", rows)], TrainConfig(test_size=0.0, min_df=1)).save(directory)
    return directory, folder / "corpus.csv", labels


@pytest.mark.filterwarnings("ignore:Glyph")  # the confusion matrix draws the escape characters as missing glyphs
def test_csv_outputs_write_no_formula(hostile_model_dir, tmp_path):
    model, corpus, labels = hostile_model_dir
    source = write_csv(tmp_path / "in.csv", [{"id": value, "text": SPORTS} for value in HOSTILE_IDS])
    header, *rows = csv_rows(ok(run("predict", "-m", model, "-i", source, "-f", "csv", "-k", "2", "-q")).stdout)
    assert [row[0] for row in rows] == [spreadsheet_cell(value) for value in HOSTILE_IDS]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
    assert {row[1] for row in rows} <= {"'" + label for label in labels}
    ok(run("evaluate", model, corpus, "--report", tmp_path / "report"))
    per_label = csv_rows((tmp_path / "report" / "per_label.csv").read_text(encoding="utf-8-sig"))
    assert sorted(row[0] for row in per_label[1:]) == sorted("'" + label for label in labels)


def test_the_table_shows_control_characters_escaped(hostile_model_dir, tmp_path):
    model, _, labels = hostile_model_dir
    ids = ["\x1b]0;title\x07x", "a\rb", "c\nd", "e\tf", "\u202eevil"]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": value, "text": ECONOMY}) + "\n" for value in ids), encoding="utf-8")
    table = ok(run("predict", "-m", model, "-i", source, "-k", "2", "-q")).stdout
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066\u2067]", table.replace("\n", ""))
    lines = table.splitlines()
    assert len(lines) == 1 + len(ids)
    assert [line.split("  ")[0].strip() for line in lines[1:]] == [printable(value) for value in ids]
    assert printable(labels[1]) in table


def test_printable_escapes_what_a_terminal_would_act_on():
    assert printable("a\x1b[31mb\x07\r\n\t\x85\u2028\u202e") == "a\\x1b[31mb\\x07\\r\\n\\t\\x85\\u2028\\u202e"
    assert printable("عربي plain é") == "عربي plain é"


# --- the --lines hint -------------------------------------------------------------------------

HEADLINES = "\n".join(f"{text} {i}" for i, text in enumerate([SPORTS, ECONOMY, SECURITY] * 2))


def test_one_article_per_line_is_told_from_an_article():
    assert looks_like_one_per_line(HEADLINES)
    assert not looks_like_one_per_line(HEADLINES.replace("\n", "\n\n"))  # paragraphs
    assert not looks_like_one_per_line("\n".join([SPORTS * 8] * 6))  # long lines
    assert not looks_like_one_per_line("\n".join([SPORTS] * 3))  # few lines


def test_many_short_lines_without_lines_get_a_hint(tiny_model_dir, tmp_path):
    hinted = ok(run("predict", "-m", tiny_model_dir, "-", "-q", input=HEADLINES))
    [note] = hinted.stderr.splitlines()
    assert note.startswith("qism: note:") and "--lines" in note and "6 lines" in note
    (tmp_path / "headlines.txt").write_text(HEADLINES, encoding="utf-8")
    assert "--lines" in ok(run("predict", "-m", tiny_model_dir, "-i", tmp_path / "headlines.txt", "-q")).stderr
    assert ok(run("predict", "-m", tiny_model_dir, "-", "--lines", "-q", input=HEADLINES)).stderr == ""
    assert ok(run("predict", "-m", tiny_model_dir, "-", "-q", input=SPORTS)).stderr == ""


# --- the command line -------------------------------------------------------------------------


def test_version_and_short_help():
    assert ok(run("--version")).stdout.strip() == f"qism {version('qism')}"
    assert "Commands:" in ok(run("-h")).stdout
    assert "--keep-columns" in ok(run("predict", "-h")).stdout


def test_help_shows_defaults_in_the_form_the_option_takes():
    for command in ("train", "evaluate", "predict", "serve", "info"):
        text = " ".join(ok(run(command, "--help")).stdout.split())
        assert not re.search(r"\(\d+, \d+\)|\[default: (yes|no|all)\]", text), command
    text = " ".join(ok(run("train", "--help")).stdout.split())
    assert "[default: 1,2]" in text and "[default: --teh-marbuta]" in text and "[default: --no-balance-outlets]" in text


def test_help_and_version_answer_without_loading_scikit_learn():
    script = (
        "import sys\nfrom qism.cli import app\n"
        "for args in (['--help'], ['predict', '--help'], ['train', '-h'], ['--version']):\n"
        "    try:\n        app(args)\n    except SystemExit as done:\n        assert done.code == 0, args\n"
        "print(sorted(m for m in ('sklearn', 'numpy', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    imported = subprocess.run(
        [sys.executable, "-c", "import qism; print(qism.Model.__name__)"], capture_output=True, text=True, cwd=ROOT
    )
    assert imported.stdout.strip() == "Model", imported.stderr


def test_a_mistyped_option_is_not_labeled_as_an_article(tiny_model_dir):
    one_line_error(run("predict", "-m", tiny_model_dir, "--verbose", SPORTS), "'--verbose'", "looks like an option")
    one_line_error(run("predict", "-m", tiny_model_dir, "--version"), "'--version'")
    assert (
        json.loads(ok(run("predict", "-m", tiny_model_dir, "-f", "json", "--", "- " + SPORTS)).stdout)[0]["label"]
        == "sports"
    )


def test_a_bad_range_is_quoted_as_the_option_takes_it(tmp_path):
    one_line_error(run("train", tmp_path, "--out", tmp_path / "m", "--word-ngrams", "3,1"), "--word-ngrams", "got 3,1")
    one_line_error(run("train", tmp_path, "--out", tmp_path / "m", "--char-ngrams", "0,99"), "or 0 for none; got 0,99")


def test_import_qism_is_the_library_even_beside_a_users_own_training_module(tmp_path):
    (tmp_path / "training.py").write_text("raise SystemExit('the user\\'s own training module')\n", encoding="utf-8")
    script = "import qism; print(qism.load_model().labels[0], qism.train.__module__)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["arab_affairs", "qism.trainer"]
