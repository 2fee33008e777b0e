"""Scale: training time and peak memory in memory and streaming, labeling local and on a Dask cluster.

ANT v2.1 at 1x, 2x, 4x and 8x (copies with distinct ids, trained with --no-dedupe): training wall
seconds (reading the corpus to a saved model), articles per second and peak memory for the in-memory
and the streaming fit, each in a fresh process. Labeling articles per second of ANT (split into eight
JSON Lines files) with `qism predict` here and with `--engine dask` on a local cluster of two worker
processes. Held-out macro-F1 of the streaming fit against the in-memory one on the SANAD and ANT
deduplicated splits (the trainer's defaults).

    python bench/scale.py [--sizes 1,2,4,8] [--parts train,label,f1] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("QISM_CORPORA", ROOT.parent / "shared" / "corpora"))
ANT = CORPORA / "ant-v2.1.jsonl.gz"
SANAD = CORPORA / "sanad-khaleej.zip"


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


def write_copies(path: Path, copies: int) -> int:
    """ANT `copies` times over as JSON Lines, each copy of a record with its own id; returns the records."""
    count = 0
    with gzip.open(ANT, "rt", encoding="utf-8") as source, open(path, "w", encoding="utf-8") as target:
        records = [json.loads(line) for line in source if line.strip()]
        for copy in range(copies):
            for record in records:
                target.write(json.dumps({**record, "id": f"{record['id']}~{copy}"}, ensure_ascii=False) + "\n")
                count += 1
    return count


def train_once(source: str, mode: str, dedupe: bool) -> dict:
    """One training in this process (run in a fresh one): seconds, peak memory, the card's figures."""
    from qism import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model = train([source], TrainConfig(dedupe=dedupe), streaming=(mode == "streaming"))
        model.save(Path(tmp) / "model")
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": peak_rss_mb(),
        "documents": sum(model.card["split"].values()),
        "macro_f1": model.card["scores"]["macro_f1"],
        "training": model.card["training"],
    }


def in_fresh_process(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def training_rows(sizes: list[int], folder: Path) -> list[dict]:
    rows = []
    for size in sizes:
        path = folder / f"ant-{size}x.jsonl"
        articles = write_copies(path, size)
        for mode in ("in-memory", "streaming"):
            run = in_fresh_process("--train-once", str(path), mode, "no-dedupe")
            rows.append(
                {
                    "size": f"{size}x",
                    "articles": articles,
                    "mode": mode,
                    "seconds": run["seconds"],
                    "articles_per_second": articles / run["seconds"],
                    "peak_mb": run["peak_mb"],
                    "fit": run["training"].get("fit", ""),
                }
            )
            print(f"train {size}x {mode}: {run['seconds']:.1f} s, {run['peak_mb']:.0f} MB", file=sys.stderr)
        path.unlink()
    return rows


def labeling_rows(folder: Path) -> list[dict]:
    """`qism predict` of ANT here, and `--engine dask` of the same articles in eight files."""
    from qism import TrainConfig, train

    model = folder / "model"
    train([ANT], TrainConfig()).save(model)
    whole = folder / "ant.jsonl"
    articles = write_copies(whole, 1)
    parts = folder / "parts"
    parts.mkdir()
    with open(whole, encoding="utf-8", newline="") as handle:
        lines = handle.readlines()  # by "\n" only: records hold U+2028 and other line breaks in their text
    for i in range(8):
        (parts / f"part{i}.jsonl").write_text("".join(lines[i::8]), encoding="utf-8")
    qism = [shutil.which("qism") or str(Path(sys.executable).parent / "qism")]
    runs = {
        "local": qism
        + [
            "predict",
            "-m",
            str(model),
            "--input",
            str(whole),
            "--format",
            "jsonl",
            "--output",
            str(folder / "local.jsonl"),
            "--quiet",
        ],
        "dask (local cluster, 2 workers)": qism
        + [
            "predict",
            "--engine",
            "dask",
            "-m",
            str(model),
            "--input",
            str(parts),
            "--output",
            str(folder / "dask"),
            "--quiet",
            "-j",
            "2",
        ],
    }
    rows = []
    for name, command in runs.items():
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        seconds = time.perf_counter() - started
        rows.append(
            {"engine": name, "articles": articles, "seconds": seconds, "articles_per_second": articles / seconds}
        )
        print(f"label {name}: {seconds:.1f} s", file=sys.stderr)
    return rows


def f1_rows() -> list[dict]:
    rows = []
    for name, path in (("SANAD-Khaleej", SANAD), ("ANT v2.1", ANT)):
        runs = {
            mode: in_fresh_process("--train-once", str(path), mode, "dedupe") for mode in ("in-memory", "streaming")
        }
        rows.append(
            {
                "corpus": name,
                "in_memory": runs["in-memory"]["macro_f1"],
                "streaming": runs["streaming"]["macro_f1"],
                "difference_points": 100 * (runs["streaming"]["macro_f1"] - runs["in-memory"]["macro_f1"]),
                "fit": runs["streaming"]["training"]["fit"],
            }
        )
        print(f"f1 {name}: {rows[-1]}", file=sys.stderr)
    return rows


def table(result: dict) -> str:
    lines = []
    if "train" in result:
        lines += ["| ANT | articles | path | wall s | articles/s | peak MB |", "|---|---:|---|---:|---:|---:|"]
        lines += [
            f"| {r['size']} | {r['articles']:,} | {r['mode']}{' (' + r['fit'] + ')' if r['fit'] else ''} | "
            f"{r['seconds']:.0f} | {r['articles_per_second']:,.0f} | {r['peak_mb']:,.0f} |"
            for r in result["train"]
        ]
    if "label" in result:
        lines += ["", "| labeling ANT | articles | wall s | articles/s |", "|---|---:|---:|---:|"]
        lines += [
            f"| {r['engine']} | {r['articles']:,} | {r['seconds']:.1f} | {r['articles_per_second']:,.0f} |"
            for r in result["label"]
        ]
    if "f1" in result:
        lines += ["", "| held-out macro-F1 | in memory | streaming | difference (points) |", "|---|---:|---:|---:|"]
        lines += [
            f"| {r['corpus']} | {r['in_memory']:.4f} | {r['streaming']:.4f} | {r['difference_points']:+.2f} |"
            for r in result["f1"]
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4,8", help="ANT multiples to train on")
    parser.add_argument("--parts", default="train,label,f1", help="which parts to run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--train-once", nargs=3, metavar=("SOURCE", "MODE", "DEDUPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_once:
        source, mode, dedupe = args.train_once
        print(json.dumps(train_once(source, mode, dedupe == "dedupe")))
        return
    if not ANT.exists():
        sys.exit(f"{ANT} not present")
    parts = args.parts.split(",")
    folder = Path(tempfile.mkdtemp(prefix="qism-scale-"))
    try:
        result = {}
        if "label" in parts:
            result["label"] = labeling_rows(folder)
        if "f1" in parts:
            result["f1"] = f1_rows()
        if "train" in parts:
            result["train"] = training_rows([int(size) for size in args.sizes.split(",")], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
