import json

import numpy as np
import pytest
from conftest import SPORTS
from qism import QismError, TrainConfig, load_model, train
from qism.model import ARRAYS_FILE, CARD_FILE, PIPELINE_FILE


def test_saved_model_predicts_like_the_trained_one(tiny, tmp_path):
    model = train([tiny], TrainConfig(test_size=0, min_df=1))
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    texts = [SPORTS, "ارتفعت أسعار الأسهم في البورصة", ""]
    np.testing.assert_array_equal(model.predict_proba(texts), loaded.predict_proba(texts))
    assert loaded.labels == ["economy", "security", "sports"]
    assert loaded.predict([SPORTS]) == ["sports"]


def test_predict_top_is_sorted_and_sums_to_at_most_one(tiny_model_dir):
    [top] = load_model(tiny_model_dir).predict_top([SPORTS], k=3)
    scores = [score for _, score in top]
    assert [label for label, _ in top][0] == "sports"
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1, abs=1e-5)


def test_model_folder_holds_no_pickle(tiny_model_dir):
    files = sorted(p.name for p in tiny_model_dir.iterdir())
    assert files == sorted([ARRAYS_FILE, CARD_FILE, "card.md", PIPELINE_FILE])
    with np.load(tiny_model_dir / ARRAYS_FILE, allow_pickle=False) as arrays:
        assert all(arrays[key].dtype != object for key in arrays.files)


def test_card_contents(tiny_model_dir):
    card = json.loads((tiny_model_dir / CARD_FILE).read_text(encoding="utf-8"))
    assert card["labels"] == {"economy": 6, "security": 6, "sports": 6}
    assert card["config"]["classifier"] == TrainConfig().classifier
    assert card["sources"][0]["documents"] == 18 and len(card["sources"][0]["sha256"]) == 64
    assert set(card["versions"]) >= {"qism", "scikit-learn", "numpy"}
    assert "created" in card and "# qism model" in (tiny_model_dir / "card.md").read_text(encoding="utf-8")


def test_same_data_same_seed_same_model(tiny, tmp_path):
    for name in ("a", "b"):
        train([tiny], TrainConfig(test_size=0.3, min_df=1)).save(tmp_path / name)
    assert (tmp_path / "a" / ARRAYS_FILE).read_bytes() == (tmp_path / "b" / ARRAYS_FILE).read_bytes()
    cards = [json.loads((tmp_path / n / CARD_FILE).read_text(encoding="utf-8")) for n in "ab"]
    assert cards[0]["scores"] == cards[1]["scores"]


def test_altered_model_is_refused(tiny, tmp_path):
    train([tiny], TrainConfig(test_size=0, min_df=1)).save(tmp_path / "m")
    spec = tmp_path / "m" / PIPELINE_FILE
    spec.write_text(spec.read_text(encoding="utf-8").replace('"C": 1.0', '"C": 2.0'), encoding="utf-8")
    with pytest.raises(QismError, match="checksum"):
        load_model(tmp_path / "m")


def test_missing_model_folder(tmp_path):
    with pytest.raises(QismError, match="no model folder"):
        load_model(tmp_path / "nothing")


def test_saving_over_a_model_replaces_it_whole(tiny, tmp_path):
    first = train([tiny], TrainConfig(test_size=0, min_df=1, C=0.1))
    first.save(tmp_path / "m")
    train([tiny], TrainConfig(test_size=0, min_df=1, C=5.0)).save(tmp_path / "m")
    assert load_model(tmp_path / "m").card["config"]["C"] == 5.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_no_texts_give_no_rows(tiny_model_dir):
    model = load_model(tiny_model_dir)
    assert model.predict_proba([]).shape == (0, 3)
    assert model.predict([]) == [] and model.predict_top([], 2) == []
