"""Labels, outlets and paths that act on whoever reads them: each is escaped for the medium it is
written to (terminal, Markdown and HTML in card.md, mathtext in the report's pictures), lone
surrogates reach no writer, and a label map a model could not be loaded with is refused when the
model is saved, leaving the model it would have replaced as it was."""

import json
import re
import shutil

import pytest
from conftest import ECONOMY, SPORTS, assert_user_error, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qism import LabelMap, QismError, TrainConfig, load_model, train
from qism.errors import markdown_text, printable
from qism.model import CARD_FILE
from qism.report import MAX_DRAWN_LABEL, confusion_matrix_png, drawn_label, strings_for

#: What a terminal acts on: C0/C1 controls but LF (lines are ours), DEL, bidi embeddings and overrides,
#: isolates but the first-strong isolate pair (U+2068, U+2069) the table puts around Arabic terms.
TERMINAL_CONTROL_RE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066\u2067]")
SECURITY = "اعتقلت الشرطة عصابة لتهريب المخدرات عبر الحدود"
TEXTS = (SPORTS, ECONOMY, SECURITY)


def ok(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def write_corpus(path, labels, outlets=None, copies=6):
    """A JSON Lines corpus: `copies` articles per label (a text of its own per label), with outlets."""
    outlets = outlets or labels
    with open(path, "w", encoding="utf-8") as handle:
        for text, label, outlet in zip(TEXTS, labels, outlets):
            for i in range(copies):
                handle.write(json.dumps({"text": f"{text} {i}", "label": label, "outlet": outlet}) + "\n")
    return path


HOSTILE = [
    "\x1b]0;PWNED\x07\x1b[2J",  # retitles the window, clears the screen
    '<img src=x onerror="alert(1)"> [x](javascript:alert(1)) **b**',  # no `|`: it separates a record's labels
    "$\\frac{a}{b}$ \u202eevil",
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-labels")
    corpus = write_corpus(folder / "<b onmouseover=alert(1)>x.jsonl", HOSTILE)
    model = folder / "<b>model</b>"
    trained = ok(run("train", corpus, "--out", model, "--min-df", "1", "--test-size", "0.34"))
    return folder, corpus, model, trained


def assert_escaped_for_a_terminal(text):
    assert not TERMINAL_CONTROL_RE.search(text), repr(text)


def test_train_evaluate_and_info_print_labels_escaped(hostile):
    _, corpus, model, trained = hostile
    for output in (
        trained.stdout,
        ok(run("evaluate", model, corpus)).stdout,
        ok(run("evaluate", model, corpus, "--against", model)).stdout,
        ok(run("info", model)).stdout,
    ):
        assert_escaped_for_a_terminal(output)
        assert printable(HOSTILE[0]) in output or "F1 " + printable(HOSTILE[0]) in output


def test_json_on_the_terminal_escapes_what_json_leaves_raw(hostile):
    _, corpus, model, _ = hostile
    info, scores = ok(run("info", model, "--json")).stdout, ok(run("evaluate", model, corpus, "--json")).stdout
    for shown in (info, scores):
        assert_escaped_for_a_terminal(shown)
    assert sorted(json.loads(info)["labels"]) == sorted(json.loads(scores)["per_label"]) == sorted(HOSTILE)


def test_card_markdown_shows_labels_outlets_and_paths_as_text(hostile):
    _, corpus, model, _ = hostile
    card, _, config = (model / "card.md").read_text(encoding="utf-8").partition("## Configuration")
    assert "<" not in card + config and '"' not in card
    assert not TERMINAL_CONTROL_RE.search(card)
    assert markdown_text(HOSTILE[1]) in card and markdown_text(corpus.name) in card
    assert "[x](javascript" not in card and "**b**" not in card and "$\\frac" not in card


def test_markdown_text_escapes_markup_but_leaves_words_alone():
    assert markdown_text("arab_affairs") == "arab_affairs"
    assert markdown_text("_a_ *b* [c](d) | e $f$ `g` <h> &i; \x1b") == (
        "\\_a\\_ \\*b\\* \\[c\\](d) \\| e \\$f\\$ \\`g\\` &lt;h&gt; &amp;i; \\\\x1b"
    )


def test_a_code_fence_in_the_configuration_cannot_be_closed_from_inside(tiny, tmp_path):
    from qism.card import card_markdown

    shown = card_markdown({"labels": {}, "config": {"note": "```\n<script>x</script>"}})
    fence = re.search(r"^(`{3,})json$", shown, re.M).group(1)
    assert len(fence) > 3 and shown.count(fence) == 2


@pytest.mark.filterwarnings("ignore:Glyph")
def test_report_draws_mathtext_labels_as_text_and_long_labels_cut(hostile, tmp_path):
    _, corpus, model, _ = hostile
    ok(run("evaluate", model, corpus, "--report", tmp_path / "report"))
    names = ["$" + "{" * 300 + "x" + "}" * 300 + "$", "$\\\\frac$", "$a^b$ " * 1000]
    png = confusion_matrix_png(__import__("numpy").eye(3, dtype=int), names, strings_for("en"))
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width < 2000 and height < 2000, (width, height)
    assert len(drawn_label("x" * 5000)) == MAX_DRAWN_LABEL and drawn_label("\x1b") == "\\x1b"


def label_map_file(folder, names):
    path = folder / "map.json"
    path.write_text(
        json.dumps({"labels": {f"id{i}": {"name": name, "from": [f"raw{i}"]} for i, name in enumerate(names)}}),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("names", [["رياضة", "رياضة", "أمن"], ["رياضة", " ", "أمن"]], ids=["twice", "blank"])
def test_a_label_map_with_equal_or_blank_names_is_refused_before_training(tmp_path, names):
    corpus = write_corpus(tmp_path / "c.jsonl", ["raw0", "raw1", "raw2"])
    result = run("train", corpus, "--out", tmp_path / "m", "--label-map", label_map_file(tmp_path, names))
    assert_user_error(result, "name")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("names", [{"sports": "x", "economy": "x"}, {"sports": " "}], ids=["twice", "blank"])
def test_a_model_that_would_not_load_is_refused_at_save_and_replaces_nothing(tiny, tmp_path, names):
    target = tmp_path / "model"
    train([tiny], TrainConfig(test_size=0.0, min_df=1)).save(target)
    before = {path.name: path.read_bytes() for path in target.iterdir()}
    model = train([tiny], TrainConfig(test_size=0.0, min_df=1, seed=7))
    model.card["label_names"] = names  # as a label map checked only at load let through
    with pytest.raises(QismError, match="would not load"):
        model.save(target)
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
    load_model(target)


def test_lone_surrogates_in_labels_names_and_paths_reach_every_writer_as_u_fffd(tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", ["raw0", "raw1", "raw2"])
    label_map = tmp_path / "map.json"
    label_map.write_text(
        '{"labels": {"a\\ud800": {"name": "n\\udfff", "from": ["raw0"]}, "b": {"from": ["raw1"]}, '
        '"c": {"from": ["raw2"]}}}',
        encoding="utf-8",
    )
    ok(run("train", corpus, "--out", tmp_path / "m", "--label-map", label_map, "--min-df", "1"))
    card = json.loads((tmp_path / "m" / CARD_FILE).read_text(encoding="utf-8"))
    assert card["label_names"]["a\ufffd"] == "n\ufffd"
    assert LabelMap.load(label_map).names == {"a\ufffd": "n\ufffd", "b": "b", "c": "c"}
    for output_format in ("jsonl", "csv", "table", "json"):
        ok(run("predict", "-m", tmp_path / "m", "-f", output_format, "-k", "3", SPORTS))


# --- every writer, for any label --------------------------------------------------------------

#: Label names from the whole Unicode range, with the characters each medium acts on drawn often.
LABEL_CHARACTERS = st.one_of(
    st.characters(codec=None, blacklist_categories=()),  # every code point, lone surrogates included
    st.sampled_from(list("\x1b\x07\r\n\t\x00\x85\u2028\u202e\u2066$\\{}^_<>&\"'|*[]()`#!~:") + ["\ud800"]),
)
LABEL = st.text(LABEL_CHARACTERS, min_size=1, max_size=12).filter(lambda label: label.strip())


def distinct_labels(labels):
    keys = [" ".join(label.replace("\ud800", "\ufffd").split()).casefold() for label in labels]
    return len(set(keys)) == len(keys) and all(keys)


@pytest.mark.filterwarnings("ignore:Glyph")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=st.lists(LABEL, min_size=3, max_size=3).filter(distinct_labels), name=LABEL)
def test_any_label_goes_through_every_writer_escaped_for_its_medium(tmp_path_factory, labels, name):
    folder = tmp_path_factory.mktemp("any-label")
    corpus = write_corpus(folder / "c.jsonl", labels, outlets=[name] * 3)
    model = folder / "model"
    for result in (
        ok(run("train", corpus, "--out", model, "--min-df", "1", "--test-size", "0.34")),
        ok(run("info", model)),
        ok(run("evaluate", model, corpus, "--report", folder / "report")),
        ok(run("predict", "-m", model, "-k", "3", "--explain", "2", SPORTS)),
    ):
        assert_escaped_for_a_terminal(result.stdout)
    for output_format in ("jsonl", "csv", "json"):
        records = ok(run("predict", "-m", model, "-f", output_format, "-k", "3", "-i", corpus)).stdout
        assert "\ud800" not in records
    card = (model / "card.md").read_text(encoding="utf-8")
    assert not TERMINAL_CONTROL_RE.search(card) and "<" not in card.replace("&lt;", "")
    page = (folder / "report" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    shutil.rmtree(folder)
