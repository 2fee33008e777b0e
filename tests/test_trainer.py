import numpy as np
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


def titled_csv(tmp_path, rows):
    """A CSV of (title, text, label) rows, read with titles = "also"."""
    import csv

    path = tmp_path / "titled.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "text", "label"])
        writer.writerows(rows)
    return path


def read_titled(tmp_path, rows):
    from qism import ReadOptions, read_source

    return prepare((str(tmp_path), doc) for doc in read_source(titled_csv(tmp_path, rows), ReadOptions(titles="also")))


def test_titles_also_adds_the_title_and_the_title_with_its_lead_after_the_article(tmp_path):
    from qism import ReadOptions, read_source

    body = "قال مدير الأمن إن الشرطة أوقفت ثلاثة مشتبه بهم في سرقة مصرف العربية.نت وسط المدينة. وأضاف أنه مستمر."
    path = titled_csv(tmp_path, [("توقيف لصوص المصرف", body, "security"), ("", "نص بلا عنوان", "security")])
    article, title, title_lead, untitled = read_source(path, ReadOptions(titles="also"))
    assert (article.part, title.part, title_lead.part, untitled.part) == (None, "title", "title_lead", None)
    assert article.text == f"توقيف لصوص المصرف\n{body}" and title.text == "توقيف لصوص المصرف"
    # the lead ends at the first sentence mark after 8 words, not at a dateline's `العربية.نت`
    assert title_lead.text == "توقيف لصوص المصرف\n" + body[: body.index("المدينة.") + len("المدينة.")]
    assert {title.label, title_lead.label} == {"security"}
    assert [doc.part for doc in read_source(path)] == [None, None]


def test_a_titles_short_forms_stay_on_their_articles_side_of_the_split(tmp_path):
    from qism import ReadOptions, read_source
    from qism.trainer import short_forms_of, split

    rows = [
        (f"عنوان رقم {i} عن {label}", f"نص المقال رقم {i} عن {label} " * 10, label) for i in range(30) for label in "xy"
    ]
    # a repeated title gives one title document; a lead that is the whole article, none
    rows.append(("عنوان رقم 0 عن x", "نص آخر قصير بالعنوان نفسه", "x"))
    prepared = prepare(
        (str(tmp_path), doc) for doc in read_source(titled_csv(tmp_path, rows), ReadOptions(titles="also"))
    )
    assert prepared.parts.count("") == 61 and prepared.parts.count("title") == 60
    assert prepared.dropped == {"duplicates_title": 1, "duplicates_title_lead": 1}
    train_rows, test_rows = split(prepared, 0.25, 42)
    assert {prepared.parts[i] for i in test_rows} == {""}
    plain = prepare((str(tmp_path), doc) for doc in read_source(titled_csv(tmp_path, rows)))
    assert [prepared.texts[i] for i in test_rows] == [plain.texts[i] for i in split(plain, 0.25, 42)[1]]
    tested = set(test_rows)
    for row in train_rows:
        assert prepared.article_of[row] not in tested
    forms = short_forms_of(prepared, test_rows)
    with_lead = {prepared.article_of[i] for i, part in enumerate(prepared.parts) if part == "title_lead"}
    assert [prepared.article_of[i] for i in forms["title_lead"]] == [row for row in test_rows if row in with_lead]
    assert len(set(train_rows) | tested | set(np.concatenate(list(forms.values())))) == len(prepared.texts)


def test_title_weight_weighs_short_forms_only(tmp_path):
    from qism import ReadOptions, read_source
    from qism.trainer import training_weights

    rows = [("عنوان", "نص طويل عن الموضوع", "x"), ("عنوان آخر", "نص طويل آخر", "y")]
    prepared = prepare(
        (str(tmp_path), doc) for doc in read_source(titled_csv(tmp_path, rows), ReadOptions(titles="also"))
    )
    weights = training_weights(prepared, TrainConfig(title_weight=0.25), np.arange(len(prepared.texts)))
    assert list(weights) == [1 if part == "" else 0.25 for part in prepared.parts]
    assert training_weights(prepared, TrainConfig(), np.arange(6)) is None
    with pytest.raises(QismError, match="titles"):
        ReadOptions(titles="only")
