"""Accuracy and speed of `qism train` defaults on the real corpora, as a table.

For SANAD-Khaleej and ANT v2.1: the trainer's stratified 80/20 split with seed 42 (after dropping
duplicates and texts found under two labels), held-out accuracy and macro-F1, training wall seconds
(reading the corpus to a saved model), labeling throughput on the held-out texts (raw text in,
cleaning included) and peak memory. Each corpus runs in its own process so memory peaks are its own.

    python bench/accuracy.py [--jobs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
BENCHMARKS = {"SANAD-Khaleej": "sanad-khaleej.zip", "ANT v2.1": "ant-v2.1.jsonl.gz"}


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


def run_one(path: Path, jobs: int) -> dict:
    from qism import TrainConfig, load_model, read_source, train
    from qism.trainer import prepare, split

    config = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model = train([path], config, n_jobs=jobs)
        model.save(Path(tmp) / "model")
        train_seconds = time.perf_counter() - started
        size_mb = sum(f.stat().st_size for f in (Path(tmp) / "model").iterdir()) / 1e6
        loaded = load_model(Path(tmp) / "model")
    loaded.set_jobs(jobs)
    prepared = prepare((str(path), doc) for doc in read_source(path))
    _, test_rows = split(prepared, config.test_size, config.seed)
    texts = [prepared.texts[i] for i in test_rows]
    started = time.perf_counter()
    loaded.predict(texts)
    docs_per_second = len(texts) / (time.perf_counter() - started)
    scores = model.card["scores"]
    return {
        "documents": sum(model.card["split"].values()),
        "test": scores["documents"],
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "ece": scores["expected_calibration_error"],
        "train_seconds": train_seconds,
        "docs_per_second": docs_per_second,
        "peak_rss_mb": peak_rss_mb(),
        "model_mb": size_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=-1, help="processes for featurizing (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one corpus in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one), args.jobs)))
        return
    rows = {}
    for name, file in BENCHMARKS.items():
        path = CORPORA / file
        if not path.exists():
            print(f"skipping {name}: {path} not found", file=sys.stderr)
            continue
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(path), "--jobs", str(args.jobs)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows[name] = json.loads(child.stdout.splitlines()[-1])
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        "| corpus | docs (after dedupe) | test docs | accuracy | macro-F1 | ECE | train s | predict docs/s | "
        "peak RSS MB | model MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['documents']:,} | {r['test']:,} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
            f"{r['ece']:.3f} "
            f"| {r['train_seconds']:.1f} | {r['docs_per_second']:,.0f} | {r['peak_rss_mb']:,.0f} | "
            f"{r['model_mb']:.1f} |"
        )


if __name__ == "__main__":
    main()
