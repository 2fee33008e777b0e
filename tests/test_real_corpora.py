"""Training on the real corpora beside the repository (skipped when ../shared/corpora is absent)."""

import itertools

import pytest
from conftest import corpus
from qism import QismError, TrainConfig, evaluate, train


def test_sanad_subset_macro_f1_floor(tmp_path):
    import zipfile

    source = corpus("sanad-khaleej.zip")
    # 150 articles per class keeps the test quick; a real run uses all 45,500
    subset = tmp_path / "sanad-subset.zip"
    with zipfile.ZipFile(source) as full, zipfile.ZipFile(subset, "w") as small:
        names = sorted(n for n in full.namelist() if n.endswith(".txt"))
        for _, group in itertools.groupby(names, key=lambda n: n.split("/")[-2]):
            for name in itertools.islice(group, 150):
                small.writestr(name, full.read(name))
    model = train([subset], TrainConfig(), n_jobs=2)
    assert model.card["scores"]["documents"] == 210
    assert model.card["scores"]["macro_f1"] >= 0.85


def test_ant_subset_macro_f1_floor(tmp_path):
    import gzip

    source = corpus("ant-v2.1.jsonl.gz")
    subset = tmp_path / "ant-subset.jsonl"
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        subset.write_text("".join(itertools.islice(handle, 0, None, 8)), encoding="utf-8")
    model = train([subset], TrainConfig(), n_jobs=2)
    assert model.card["scores"]["macro_f1"] >= 0.70
    model.save(tmp_path / "ant")
    asnd = corpus("asnd/sm_news_ar_dev.csv")
    with pytest.raises(QismError, match="labels the model does not know"):  # ASND's labels are not ANT's
        evaluate(model, [asnd])
