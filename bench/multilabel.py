"""Multi-label sections on ANT v2.1: qism against fastText `-loss ova` and scikit-learn one-vs-rest,
on the same split, in one run (issue 22).

The split is the one `python ../shared/bench/ant_multilabel_split.py DIR` writes: each article once
with every section its outlet filed it under, 80/20 by a hash of the text (`ml_ant_train.jsonl`,
`ml_ant_test.jsonl`, labels as JSON lists). Without `--split DIR` it is written to a temporary folder.

- qism: `qism.train` on the training file with its defaults (multi-label because the file lists
  several sections for some articles: a threshold per label, the best label always kept).
- fastText: `-loss ova`, epoch 25, wordNgrams 2 (the rest fastText's defaults), on the raw text with
  whitespace collapsed; every label at probability 0.5 or more.
- scikit-learn: TF-IDF of word 1-2-grams (sublinear tf) and one-vs-rest logistic regression; every
  label at probability 0.5 or more.

Each tool trains in a fresh process; training seconds run from reading the training file to a
fitted model (qism: saved). Figures: micro-F1 and macro-F1 over the test articles, and, for the
test articles of two sections or more, the share whose sections were all found.

    pip install -e ".[bench]" && python bench/multilabel.py [--split DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPLITTER = ROOT.parent / "shared" / "bench" / "ant_multilabel_split.py"
FASTTEXT_PARAMS = {"loss": "ova", "epoch": 25, "wordNgrams": 2, "thread": 2}
#: fastText and scikit-learn give an article every label at this probability or more.
PROBABILITY = 0.5


def _records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def figures(truth: list[list[str]], predicted: list[list[str]], seconds: float) -> dict:
    """Micro- and macro-F1, and the share of articles of several sections with all of them found."""
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    binarizer = MultiLabelBinarizer().fit(truth + predicted)
    gold, chosen = binarizer.transform(truth), binarizer.transform(predicted)
    several = gold.sum(axis=1) >= 2
    return {
        "micro_f1": float(f1_score(gold, chosen, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(gold, chosen, average="macro", zero_division=0)),
        "all_sections_found": float((gold[several] <= chosen[several]).all(axis=1).mean()),
        "several_section_articles": int(several.sum()),
        "train_seconds": seconds,
    }


def run_qism(split: Path) -> dict:
    from qism import TrainConfig, load_model, train

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        train([split / "ml_ant_train.jsonl"], TrainConfig(test_size=0), n_jobs=-1).save(Path(tmp) / "model")
        seconds = time.perf_counter() - started
        model = load_model(Path(tmp) / "model")
    test = _records(split / "ml_ant_test.jsonl")
    return figures([r["label"] for r in test], model.predict([r["text"] for r in test]), seconds)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run_fasttext(split: Path) -> dict:
    import fasttext

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        train_file = Path(tmp) / "train.txt"
        with open(train_file, "w", encoding="utf-8") as out:
            for record in _records(split / "ml_ant_train.jsonl"):
                labels = " ".join(f"__label__{label}" for label in record["label"])
                out.write(f"{labels} {_one_line(record['text'])}\n")
        model = fasttext.train_supervised(input=str(train_file), verbose=0, **FASTTEXT_PARAMS)
        seconds = time.perf_counter() - started
    test = _records(split / "ml_ant_test.jsonl")
    labels, _ = model.predict([_one_line(r["text"]) for r in test], k=-1, threshold=PROBABILITY)
    predicted = [[label.removeprefix("__label__") for label in row] for row in labels]
    return figures([r["label"] for r in test], predicted, seconds)


def run_sklearn(split: Path) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MultiLabelBinarizer

    started = time.perf_counter()
    train = _records(split / "ml_ant_train.jsonl")
    binarizer = MultiLabelBinarizer().fit([r["label"] for r in train])
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        OneVsRestClassifier(LogisticRegression(max_iter=1000), n_jobs=2),
    )
    pipeline.fit([r["text"] for r in train], binarizer.transform([r["label"] for r in train]))
    seconds = time.perf_counter() - started
    test = _records(split / "ml_ant_test.jsonl")
    chosen = pipeline.predict_proba([r["text"] for r in test]) >= PROBABILITY
    predicted = [list(binarizer.classes_[np.flatnonzero(row)]) for row in chosen]
    return figures([r["label"] for r in test], predicted, seconds)


TOOLS = {"qism": run_qism, "fastText -loss ova": run_fasttext, "scikit-learn one-vs-rest": run_sklearn}


def run_in_child(tool: str, split: Path) -> dict:
    child = subprocess.run([sys.executable, __file__, "--worker", tool, str(split)], capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{child.stderr}")
    return json.loads(child.stdout.splitlines()[-1])


def print_table(rows: dict[str, dict]) -> None:
    fasttext_seconds = rows["fastText -loss ova"]["train_seconds"]
    several = next(iter(rows.values()))["several_section_articles"]
    print(f"| tool | micro-F1 | macro-F1 | all sections found ({several} test articles) | training s | x fastText |")
    print("|---|---|---|---|---|---|")
    for tool, row in rows.items():
        print(
            f"| {tool} | {row['micro_f1']:.3f} | {row['macro_f1']:.3f} | {row['all_sections_found']:.1%} | "
            f"{row['train_seconds']:.1f} | {row['train_seconds'] / fasttext_seconds:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, help="folder of ml_ant_train.jsonl and ml_ant_test.jsonl")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, split = args.worker
        print(json.dumps(TOOLS[tool](Path(split))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        split = args.split
        if split is None:
            if not SPLITTER.exists():
                raise SystemExit(f"{SPLITTER} is not here: give --split DIR")
            split = Path(tmp)
            subprocess.run([sys.executable, str(SPLITTER), str(split)], check=True, stdout=subprocess.DEVNULL)
        rows = {tool: run_in_child(tool, split) for tool in TOOLS}
    print(json.dumps(rows, indent=2)) if args.json else print_table(rows)


if __name__ == "__main__":
    main()
