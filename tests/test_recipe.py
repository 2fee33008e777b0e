import json
import re

import pytest
from conftest import LABEL_MAP
from qism import QismError, TrainConfig, evaluate, load_model, train
from qism.cli import app
from qism.recipe import LabelMap, load_recipe
from typer.testing import CliRunner


def test_label_map_renames_merges_and_drops(tiny, tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(LABEL_MAP, encoding="utf-8")
    model = train([tiny], label_map=LabelMap.load(path))
    assert model.card["labels"] == {"money": 6, "sport": 6}
    assert model.card["label_names"] == {"money": "اقتصاد", "sport": "رياضة"}
    assert model.card["dropped"]["unmapped_label"] == 6
    assert model.card["unmapped_labels"] == {"tiny:security": 6}


def test_label_map_json_and_source_qualified_labels(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"labels": {"a": {"name": "أ", "from": ["x.csv:p", "q"]}}}), encoding="utf-8")
    mapping = LabelMap.load(path)
    assert mapping.target("dir/x.csv", "p") == "a"
    assert mapping.target("y.csv", "p") is None
    assert mapping.target("y.csv", " q ") == "a"


def test_recipe_trains_reproducibly_and_predictions_carry_names(tiny, tmp_path):
    (tmp_path / "map.toml").write_text(LABEL_MAP, encoding="utf-8")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f'sources = ["{tiny}"]\nlabel_map = "map.toml"\n[train]\nmin_df = 1\ntest_size = 0.34\nC = 0.5\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(app, ["train", "--recipe", str(recipe), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output + result.stderr
    cards = [load_model(tmp_path / n).card for n in "ab"]
    assert cards[0]["scores"] == cards[1]["scores"] and cards[0]["config"]["C"] == 0.5
    result = runner.invoke(
        app, ["predict", "فاز الفريق بالمباراة وسجل اللاعب هدفين", "--model", str(tmp_path / "a"), "--format", "json"]
    )
    [record] = json.loads(result.output)
    assert (record["label"], record["label_ar"]) == ("sport", "رياضة")
    assert record["top"][0]["label_ar"] == "رياضة"


def test_recipe_errors(tiny, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[train]\nC = 1\n", encoding="utf-8")
    with pytest.raises(QismError, match="sources"):
        load_recipe(recipe)
    recipe.write_text(f'sources = ["{tiny}"]\n[train]\nlearning_rate = 1\n', encoding="utf-8")
    with pytest.raises(QismError, match=r"\[train\]: unknown option"):
        load_recipe(recipe)
    recipe.write_text(f'sources = ["{tiny}"]\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(tiny), "--recipe", str(recipe), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "not both" in result.stderr


def test_evaluate_accepts_display_names_as_labels(tiny, tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(LABEL_MAP, encoding="utf-8")
    model = train([tiny], TrainConfig(min_df=1, test_size=0), label_map=LabelMap.load(path))
    corpus = tmp_path / "by-name"
    for folder, name in (("sports", "رياضة"), ("economy", "اقتصاد")):
        (corpus / name).mkdir(parents=True)
        for article in (tiny / folder).iterdir():
            (corpus / name / article.name).write_bytes(article.read_bytes())
    scores = evaluate(model, [corpus])
    assert scores["labels_unknown_to_model"] == [] and scores["accuracy"] == 1.0


def test_recipe_notes_reach_the_card(tiny, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'sources = ["{tiny}"]\nnotes = ["security is learned from posts only"]\n[train]\nmin_df = 1\ntest_size = 0\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["train", "--recipe", str(recipe), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "m").card["notes"] == ["security is learned from posts only"]
    assert "- security is learned from posts only" in (tmp_path / "m" / "card.md").read_text(encoding="utf-8")
    recipe.write_text(f'sources = ["{tiny}"]\nnotes = "one string"\n', encoding="utf-8")
    with pytest.raises(QismError, match="notes"):
        load_recipe(recipe)


@pytest.mark.parametrize(
    "read, text, fragment",
    [
        (LabelMap.load, "[labels.a]\nname = 'x'\n", "non-empty `from`"),
        (LabelMap.load, "[labels.a]\nfrom = ['p']\n[labels.b]\nfrom = ['p']\n", "both"),
        (LabelMap.load, "labels = [", "cannot parse"),
        (load_recipe, 'sources = ["x"]\nlabelmap = "map.toml"\n', "unknown key(s) labelmap"),
        (load_recipe, 'sources = ["x"]\n[trian]\nseed = 1\n', "unknown key(s) trian"),
        (load_recipe, 'sources = ["x"]\n[train]\ndedupe = "yes"\n', "dedupe"),
        (load_recipe, 'sources = ["x"]\n[train]\nseed = 1.5\n', "--seed"),
        (load_recipe, 'sources = ["x"]\n[train]\ncleaning = {teh_marbuta = "no"}\n', "cleaning.teh_marbuta"),
        (load_recipe, 'sources = ["x"]\n[read]\nencodnig = "utf-8"\n', "encodnig"),
        (load_recipe, 'sources = ["x"]\n[label_map.labels.a]\nname = "أ"\nfrom = ["b"]\nform = ["c"]\n', "form"),
    ],
)
def test_bad_label_maps_and_recipes_are_refused_before_reading(tmp_path, read, text, fragment):
    path = tmp_path / "file.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(QismError, match=re.escape(fragment)):
        read(path)


def test_command_line_options_override_a_recipe_key_by_key(tiny, tmp_path):
    from qism import plan_training

    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'sources = ["{tiny}"]\n[train]\nseed = 3\nmin_df = 2\ncleaning = {{alef = false}}\n'
        '[read]\nencoding = "utf-8"\n',
        encoding="utf-8",
    )
    plan = plan_training(
        recipe=recipe, train_options={"seed": 9, "cleaning": {"teh_marbuta": False}}, read_options={"errors": "replace"}
    )
    assert (plan.config.seed, plan.config.min_df) == (9, 2)
    assert plan.config.cleaning == {"alef": False, "teh_marbuta": False}
    assert (plan.read_options.encoding, plan.read_options.errors) == ("utf-8", "replace")
    with pytest.raises(QismError, match="not both"):
        plan_training([tiny], recipe=recipe)


def test_recipe_sources_with_their_own_columns_and_outlet(tiny, tmp_path):
    """A table with other column names and a title is read by its own options; its articles count as
    the named outlet, and no other column (a date, an author) reaches the text."""
    import csv

    from qism import plan_training, read_source
    from qism.card import card_markdown

    rows = [
        (
            str(i),
            f"عنوان {i}",
            "2020-01-01",
            "AUTHOR_NAME",
            (tiny / label / f"0{i}.txt").read_text(encoding="utf-8"),
            label,
        )
        for label in ("sports", "economy")
        for i in range(1, 7)
    ]
    table = tmp_path / "stories.csv"
    with table.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "id", "title", "date", "author", "story", "topic"])
        writer.writerows([(n, *row) for n, row in enumerate(rows)])
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'sources = ["{tiny}", {{path = "{table}", text_column = "story", label_column = "topic", '
        f'outlet = "paper"}}]\n[read]\nencoding = "utf-8"\n[train]\ntest_size = 0.5\n',
        encoding="utf-8",
    )
    plan = plan_training(recipe=recipe)
    assert plan.sources == [str(tiny), str(table)]
    own = plan.source_options[str(table)]
    assert (own.text_column, own.encoding, own.outlet) == ("story", "utf-8", "paper")  # [read] applies beneath
    docs = list(read_source(table, own))
    assert docs[0].text.startswith("عنوان 1\n") and docs[0].outlet == "paper" and docs[0].label == "sports"
    assert not any("AUTHOR_NAME" in doc.text or "2020-01-01" in doc.text for doc in docs)
    model = train(plan.sources, plan.config, read_options=plan.read_options, source_options=plan.source_options)
    assert model.card["sources"][1]["documents"] == 12
    assert set(model.card["scores"]["by_outlet"]) == {"tiny", "paper"}
    assert model.card["documents_by_outlet"] == {
        "paper": {"economy": 6, "sports": 6},
        "tiny": {"economy": 6, "security": 6, "sports": 6},
    }
    assert "| paper | 6 | – | 6 |" in card_markdown(model.card)
    result = CliRunner().invoke(app, ["train", "--recipe", str(recipe), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    recipe.write_text(f'sources = [{{path = "{table}", text_colum = "story"}}]\n', encoding="utf-8")
    with pytest.raises(QismError, match="text_colum"):
        load_recipe(recipe)
    recipe.write_text('sources = [{text_column = "story"}]\n', encoding="utf-8")
    with pytest.raises(QismError, match="a path or a table"):
        load_recipe(recipe)


def _unseen_outlets_record(plan, groups=("tiny-a", "tiny-b")) -> dict:
    """A record as bench/unseen_outlets.py --save writes it, for this plan."""
    results = [
        {
            "group": group,
            "documents": 6,
            "unscored": 0,
            "accuracy": 0.5 + i / 10,
            "macro_f1": 0.4 + i / 10,
            "sections": {
                "sport": {"f1": 0.75, "support": 3, "recall": 1.0},
                "money": {"f1": 0.25 + i / 10, "support": 3, "recall": 0.5},
            },
        }
        for i, group in enumerate(groups)
    ]
    return {
        "recipe": "recipe.toml",
        "settings": {},
        "results": results,
        "mean_macro_f1": 0.45,
        "seconds": 1.0,
        "sources": plan.sources,
        "source_options": plan.source_options_dict(),
        "config": plan.config.to_dict(),
        "label_map": plan.label_map.to_dict(),
    }


def test_recipe_scores_on_outlets_left_out_go_in_the_card_only_if_measured_with_it(tiny, tmp_path):
    from qism import plan_training

    (tmp_path / "map.toml").write_text(LABEL_MAP, encoding="utf-8")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f'sources = ["{tiny}"]\nlabel_map = "map.toml"\nunseen_outlets = "unseen.json"\n[train]\ntest_size = 0\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--recipe", str(recipe), "--out", str(tmp_path / "none")])
    assert result.exit_code == 0 and "unseen.json: not made yet" in result.stderr
    assert "unseen_outlets" not in load_model(tmp_path / "none").card

    record = _unseen_outlets_record(plan_training(recipe=recipe))
    (tmp_path / "unseen.json").write_text(json.dumps(record), encoding="utf-8")
    result = runner.invoke(app, ["train", "--recipe", str(recipe), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.stderr
    assert load_model(tmp_path / "m").card["unseen_outlets"] == json.loads(json.dumps(record))
    card_md = (tmp_path / "m" / "card.md").read_text(encoding="utf-8")
    assert "## On outlets it never saw" in card_md
    assert "| tiny-b | 6 | 0.600 | 0.500 | 0.35 (3) | 0.75 (3) |" in card_md
    assert "| **mean** | | 0.550 | 0.450 | 0.30 | 0.75 |" in card_md

    # measured with other options, sources or labels than this training's: left out, and said so
    for extra in (["--C", "2"], ["--autotune", "1"]):
        result = runner.invoke(app, ["train", "--recipe", str(recipe), "--out", str(tmp_path / "other"), *extra])
        assert result.exit_code == 0 and "stays out of the card" in result.stderr, result.stderr
        assert "unseen_outlets" not in load_model(tmp_path / "other").card
    without_read_options = {key: value for key, value in record.items() if key != "source_options"}
    for other in ({**record, "label_map": None}, without_read_options):
        (tmp_path / "unseen.json").write_text(json.dumps(other), encoding="utf-8")
        result = runner.invoke(app, ["train", "--recipe", str(recipe), "--out", str(tmp_path / "other")])
        assert "stays out of the card" in result.stderr


def test_recipe_refuses_a_malformed_record_of_outlets_left_out(tiny, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'sources = ["{tiny}"]\nunseen_outlets = "unseen.json"\n', encoding="utf-8")
    (tmp_path / "unseen.json").write_text("[]", encoding="utf-8")
    with pytest.raises(QismError, match="unseen.json: expected a table"):
        load_recipe(recipe)
    for bad in (
        {"results": []},
        {
            "results": [{"group": "a", "documents": 1, "accuracy": 2, "macro_f1": 0.5, "sections": {}}],
            "mean_macro_f1": 0.5,
            "sources": [],
            "config": {},
        },
    ):
        (tmp_path / "unseen.json").write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(QismError, match="unseen.json: .*bench/unseen_outlets.py --save"):
            load_recipe(recipe)
    recipe.write_text(f'sources = ["{tiny}"]\nunseen_outlets = 3\n', encoding="utf-8")
    with pytest.raises(QismError, match="`unseen_outlets` is the file name"):
        load_recipe(recipe)


def test_settings_files_are_bounded(tmp_path):
    from qism.recipe import MAX_CONFIG_FILE_BYTES

    recipe = tmp_path / "recipe.toml"
    recipe.write_text('sources = ["x"]\n' + "#" * MAX_CONFIG_FILE_BYTES, encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--recipe", str(recipe), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "recipe.toml: over 4 MB" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bench_record_of_outlets_left_out_enters_the_card_it_was_measured_for(tiny, tmp_path, monkeypatch):
    """bench/unseen_outlets.py --save writes what a recipe's `unseen_outlets` reads: two outlets of
    the tiny corpus, each left out in turn, and the table in the model card trained from it."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    from qism import read_source

    documents = list(read_source(tiny))
    for outlet in ("north", "south"):
        with open(tmp_path / f"{outlet}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows([f"{doc.text} {outlet}", doc.label] for doc in documents)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'sources = [{path = "north.csv", outlet = "north"}, {path = "south.csv", outlet = "south"}]\n'
        'unseen_outlets = "unseen.json"\n[train]\ntest_size = 0\n',
        encoding="utf-8",
    )
    bench = Path(__file__).resolve().parent.parent / "bench" / "unseen_outlets.py"
    run = subprocess.run(
        [sys.executable, str(bench), "--recipe", "recipe.toml", "--save", "unseen.json", "--jobs", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "unseen.json").read_text(encoding="utf-8"))
    assert [result["group"] for result in record["results"]] == ["north", "south"]
    assert run.stdout.startswith("| left out | docs | accuracy | macro-F1 | economy | security | sports |")
    monkeypatch.chdir(tmp_path)  # the recipe's sources are relative to the folder qism runs in
    result = CliRunner().invoke(app, ["train", "--recipe", "recipe.toml", "--out", "m"])
    assert result.exit_code == 0 and "outlets left out" not in result.stderr, result.stderr
    assert load_model(tmp_path / "m").card["unseen_outlets"] == record
    assert "| north | 18 |" in (tmp_path / "m" / "card.md").read_text(encoding="utf-8")


def test_bench_record_of_short_input_enters_the_card_only_with_the_read_options_it_was_measured_with(
    tiny, tmp_path, monkeypatch
):
    """bench/short.py --save writes what a recipe's `short_input` reads: titles alone, title + lead
    and articles of the held-out split and of each outlet left out; a training that reads the
    sources otherwise (no titles) leaves it out of the card."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    from qism import read_source

    documents = list(read_source(tiny))
    for outlet in ("north", "south"):
        with open(tmp_path / f"{outlet}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["title", "text", "label"])
            writer.writerows(
                [" ".join([*doc.text.split()[:6], outlet]), f"{doc.text} {outlet}", doc.label] for doc in documents
            )
    sources = '[{path = "north.csv", outlet = "north", titles = "%s"}, {path = "south.csv", outlet = "south"}]'
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f'sources = {sources % "also"}\nshort_input = "short.json"\nunseen_outlets = "unseen.json"\n'
        "[train]\ntest_size = 0.34\ntitle_weight = 0.5\n",
        encoding="utf-8",
    )
    bench = Path(__file__).resolve().parent.parent / "bench" / "short.py"
    run = subprocess.run(
        [sys.executable, str(bench), "--recipe", "recipe.toml", "--save", "short.json", "--save-unseen", "unseen.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "short.json").read_text(encoding="utf-8"))
    # runs over parts of the groups (--only) merge into the same record
    for part, groups in (("a", record["left_out"][:1]), ("b", record["left_out"][1:])):
        partial = {**record, "left_out": groups, "held_out": record["held_out"] if part == "a" else None}
        (tmp_path / f"{part}.json").write_text(json.dumps(partial), encoding="utf-8")
    merge = [sys.executable, str(bench), "--recipe", "recipe.toml", "--merge", "b.json", "a.json", "--save", "m.json"]
    assert subprocess.run(merge, cwd=tmp_path, capture_output=True, timeout=300).returncode == 0
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == {**record, "seconds": 2 * record["seconds"]}
    assert sorted(record["held_out"]["0.5"]) == ["article", "title", "title_lead"]
    assert [result["group"] for result in record["left_out"]] == ["north", "south"]
    assert record["left_out_mean"]["0.5"]["title"]["groups"] == 2
    monkeypatch.chdir(tmp_path)  # the recipe's sources are relative to the folder qism runs in
    result = CliRunner().invoke(app, ["train", "--recipe", "recipe.toml", "--out", "m"])
    assert result.exit_code == 0 and "short.json" not in result.stderr, result.stderr
    assert load_model(tmp_path / "m").card["short_input"] == record
    assert [group["group"] for group in load_model(tmp_path / "m").card["unseen_outlets"]["results"]] == [
        "north",
        "south",
    ]
    card_md = (tmp_path / "m" / "card.md").read_text(encoding="utf-8")
    assert "## On titles and short items" in card_md and "| north left out | 0.5 | 18, " in card_md
    assert "| **mean of left out** | 0.5 | 2 groups, " in card_md

    recipe.write_text(recipe.read_text(encoding="utf-8").replace('titles = "also"', 'titles = "no"'), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--recipe", "recipe.toml", "--out", "other"])
    assert result.exit_code == 0 and "short.json was measured with other" in result.stderr, result.stderr
    assert "short_input" not in load_model(tmp_path / "other").card
    for bad in ({"held_out": {"0.5": {"title": {}}}}, {"held_out": None, "left_out_mean": None}):
        (tmp_path / "short.json").write_text(json.dumps({**record, **bad}), encoding="utf-8")
        with pytest.raises(QismError, match="short.json: not a record of bench/short.py --save"):
            load_recipe(recipe)
    held_out_only = {**record, "left_out": []}
    del held_out_only["left_out_mean"]
    (tmp_path / "short.json").write_text(json.dumps(held_out_only), encoding="utf-8")
    assert load_recipe(recipe).short_input == held_out_only
