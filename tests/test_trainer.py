import pytest
from qism import Document, QismError, TrainConfig, train
from qism.trainer import prepare


def docs(*pairs):
    return [("src", Document(text=text, label=label)) for text, label in pairs]


def test_prepare_drops_duplicates_conflicts_and_empty_texts():
    prepared = prepare(docs(("نص أ", "x"), ("نص  أ", "x"), ("نص ب", "x"), ("نص ب", "y"), ("  ", "y"), ("نص ج", " y ")))
    assert prepared.texts == ["نص أ", "نص ج"] and prepared.labels == ["x", "y"]
    assert prepared.dropped == {"duplicates": 1, "label_conflicts": 2, "empty_text": 1}
    assert prepared.sources[0]["documents"] == 6


def test_no_dedupe_keeps_everything():
    assert len(prepare(docs(("a", "x"), ("a", "x")), dedupe=False).texts) == 2


def test_held_out_scores_in_card(tiny):
    model = train([tiny], TrainConfig(test_size=0.34, min_df=1))
    assert model.card["split"] == {"train": 12, "test": 6}
    assert model.card["scores"]["documents"] == 6
    assert model.card["scores"]["macro_f1"] >= 0.8  # three clearly separate topics


def test_single_label_corpus_is_refused(tmp_path):
    (tmp_path / "sports").mkdir()
    for i in range(3):
        (tmp_path / "sports" / f"{i}.txt").write_text(f"مباراة رقم {i}", encoding="utf-8")
    with pytest.raises(QismError, match="single label"):
        train([tmp_path])


def test_label_too_small_to_split(tiny, tmp_path):
    (tmp_path / "rare").mkdir()
    (tmp_path / "rare" / "1.txt").write_text("خبر نادر", encoding="utf-8")
    with pytest.raises(QismError, match="rare"):
        train([tiny, tmp_path])
    assert train([tiny, tmp_path], TrainConfig(test_size=0, min_df=1)).card["labels"]["rare"] == 1


@pytest.mark.parametrize(
    "bad, option",
    [
        ({"classifier": "forest"}, "--classifier"),
        ({"test_size": 1.5}, "--test-size"),
        ({"cleaning": {"nope": True}}, "nope"),
    ],
)
def test_bad_config_is_refused_when_made(bad, option):
    with pytest.raises(QismError, match=option):
        TrainConfig(**bad)
