"""`qism train --autotune`: the search chooses by cross-validation on the training split only, within
its budget, and the card says what was tried."""

import json

import numpy as np
import pytest
from conftest import SAMPLE
from qism import QismError, TfidfFeaturizer, TrainConfig, read_source, train
from qism.autotune import classifier_candidates, estimated_seconds, knobs_of
from qism.cli import app
from qism.config import parse_duration
from qism.trainer import autotune_on_training_split, prepare, split
from typer.testing import CliRunner

TINY_CONFIG = TrainConfig(test_size=0.34, min_df=1)
#: Long enough for every planned trial on the fixtures.
NO_LIMIT = 3600


def without_seconds(search: dict) -> list:
    return [(trial["config"], trial["cv_macro_f1"]) for trial in search["trials"]]


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("5m", 300), ("1h", 3600), ("45", 45), (" 1.5H ", 5400), ("0.5m", 30)]
)
def test_durations_in_seconds_minutes_hours_or_plain_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "-5", "0", "0s", "1h30m", "m", "5 minutes"])
def test_bad_durations_are_user_errors(text):
    with pytest.raises(QismError, match="autotune"):
        parse_duration(text)


def test_candidates_start_with_the_given_config_and_repeat_none():
    base = TrainConfig(classifier="linear_svc", C=1.0, class_weight=None)
    candidates = classifier_candidates(base)
    assert candidates[0] == knobs_of(base)
    assert len({json.dumps(c) for c in candidates}) == len(candidates)
    assert [c["classifier"] for c in candidates].count("complement_nb") == 1
    assert candidates[-1]["classifier"] == "logreg"


def test_an_unseen_kind_is_expected_to_cost_its_relative_share():
    assert estimated_seconds("sgd", {"sgd": 2.0}) == 2.0
    assert estimated_seconds("logreg", {"sgd": 1.0}) == 20.0
    # complement NB slowed by calibration on a small corpus does not make logistic regression look endless
    assert estimated_seconds("logreg", {"sgd": 1.0, "linear_svc": 4.0, "complement_nb": 2.0}) == 20.0


def test_autotune_records_every_trial_and_fits_the_best_by_cv(tiny):
    model = train([tiny], TINY_CONFIG, autotune=NO_LIMIT, n_jobs=1)
    search = model.card["autotune"]
    assert search["budget_seconds"] == NO_LIMIT and search["skipped"] == []
    assert len(search["trials"]) == len(classifier_candidates(TINY_CONFIG)) + 2  # two more word n-gram ranges
    assert search["trials"][0]["config"] == knobs_of(TINY_CONFIG)
    best = max(trial["cv_macro_f1"] for trial in search["trials"])
    earliest_best = next(trial for trial in search["trials"] if trial["cv_macro_f1"] == best)
    assert search["chosen"] is not None and search["chosen"] == earliest_best
    assert {knob: model.card["config"][knob] for knob in search["chosen"]["config"]} == search["chosen"]["config"]
    assert model.card["scores"]["documents"] == 6


def test_a_tiny_budget_still_trains_the_given_config(tiny):
    model = train([tiny], TINY_CONFIG, autotune=1e-6, n_jobs=1)
    search = model.card["autotune"]
    assert [trial["config"] for trial in search["trials"]] == [knobs_of(TINY_CONFIG)]
    assert len(search["skipped"]) == len(classifier_candidates(TINY_CONFIG)) + 1
    assert model.card["config"] == TINY_CONFIG.to_dict()
    given = train([tiny], TINY_CONFIG, n_jobs=1).pipeline.named_steps["classifier"]
    trained = model.pipeline.named_steps["classifier"]
    assert np.array_equal(trained.coef_, given.coef_) and np.array_equal(trained.intercept_, given.intercept_)


def test_the_held_out_split_never_reaches_the_search(tiny, monkeypatch):
    prepared = prepare((str(tiny), doc) for doc in read_source(tiny))
    _, test_rows = split(prepared, TINY_CONFIG.test_size, TINY_CONFIG.seed)
    held_out = {prepared.texts[i] for i in test_rows}
    featurized = []
    fit_transform = TfidfFeaturizer.fit_transform

    def spy(self, texts, y=None):
        featurized.append(list(texts))
        return fit_transform(self, texts, y)

    monkeypatch.setattr(TfidfFeaturizer, "fit_transform", spy)
    model = train([tiny], TINY_CONFIG, autotune=NO_LIMIT, n_jobs=1)
    assert model.card["autotune"]["documents"] == model.card["split"]["train"] == 12
    assert len(featurized) == 4  # given word n-grams, two other ranges, the final fit
    assert all(len(texts) == 12 and not held_out & set(texts) for texts in featurized)


def test_same_data_budget_and_seed_give_the_same_choice():
    prepared = prepare((str(SAMPLE), doc) for doc in read_source(SAMPLE))
    config = TrainConfig(min_df=1)
    first, first_search = autotune_on_training_split(prepared, config, NO_LIMIT, n_jobs=1)
    second, second_search = autotune_on_training_split(prepared, config, NO_LIMIT, n_jobs=1)
    assert first == second
    assert without_seconds(first_search) == without_seconds(second_search)


def test_every_label_needs_two_training_documents_to_cross_validate(tiny, tmp_path):
    (tmp_path / "rare").mkdir()
    (tmp_path / "rare" / "1.txt").write_text("خبر نادر", encoding="utf-8")
    with pytest.raises(QismError, match="at least 2 training documents"):
        train([tiny, tmp_path], TrainConfig(test_size=0, min_df=1), autotune=NO_LIMIT, n_jobs=1)


def test_cli_autotune_prints_the_card_with_the_search(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(SAMPLE),
            "--out",
            str(tmp_path / "m"),
            "--min-df",
            "1",
            "--jobs",
            "1",
            "--autotune",
            "10m",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    search = card["autotune"]
    assert search["budget_seconds"] == 600 and search["documents"] == card["split"]["train"]
    assert card["config"]["classifier"] == search["chosen"]["config"]["classifier"]
    assert card["config"]["word_ngrams"] == search["chosen"]["config"]["word_ngrams"]
    assert f"autotune: {len(search['trials'])} trials" in CliRunner().invoke(app, ["info", str(tmp_path / "m")]).output
    assert "## Autotune" in (tmp_path / "m" / "card.md").read_text(encoding="utf-8")


def test_cli_refuses_a_bad_duration_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["train", str(SAMPLE), "--out", str(tmp_path / "m"), "--autotune", "soon"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "--autotune" in result.stderr
    assert not (tmp_path / "m").exists()
