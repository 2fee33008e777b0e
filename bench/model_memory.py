"""Peak memory of loading hand-made models near the cap, against what their files claim.

Builds resealed models from the tiny fixture whose weights span 2**24 buckets for a growing number of
labels (zeros: a few MB on disk each), then runs `qism info` on each in a fresh process and prints
the files' size, what loading claims (the JSON as parsed, the arrays unpacked, the weights twice,
qism's own allowance),
whether it loaded or was refused, the peak RSS and the seconds. A model refused by the cap takes
about what a small one does; one that loads stays under the cap (4 GiB) with Python's own ~130 MB.

    python bench/model_memory.py [--labels 2 8 14 15 30] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BUCKETS = 2**24


def hostile_model(directory: Path, labels: int) -> None:
    """A model that passes every check: `labels` labels over every one of 2**24 buckets."""
    from qism import TrainConfig, train
    from qism.model import card_checksum

    train([ROOT / "tests" / "fixtures" / "tiny"], TrainConfig(test_size=0, min_df=1, n_buckets=BUCKETS)).save(directory)
    spec = json.loads((directory / "pipeline.json").read_text(encoding="utf-8"))
    dict(spec["pipeline"]["steps"])["features"]["fitted"]["n_features_out_"] = BUCKETS
    (directory / "pipeline.json").write_text(json.dumps(spec), encoding="utf-8")
    with np.load(directory / "arrays.npz") as old:
        arrays = dict(old)
    arrays["features.columns_"] = np.arange(BUCKETS, dtype=np.int32)
    arrays["features.idf_"] = np.ones(BUCKETS)
    arrays["classifier.classes_"] = np.array([f"l{i}" for i in range(labels)])
    arrays["classifier.coef_"] = np.zeros((labels, BUCKETS))
    arrays["classifier.intercept_"] = np.zeros(labels)
    with open(directory / "arrays.npz", "wb") as handle:
        np.savez_compressed(handle, **arrays)
    card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    card.update(labels={f"l{i}": 1 for i in range(labels)}, scores=None)
    card["files"] = {
        name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in ("pipeline.json", "arrays.npz")
    }
    card["card_sha256"] = card_checksum(card)
    (directory / "card.json").write_text(json.dumps(card), encoding="utf-8")


def claimed(directory: Path) -> int:
    from qism.model import HELD_TWICE, LOAD_ALLOWANCE, LOADED_JSON_PER_BYTE

    with zipfile.ZipFile(directory / "arrays.npz") as archive:
        arrays = sum(i.file_size * (1 + (i.filename.removesuffix(".npy") in HELD_TWICE)) for i in archive.infolist())
    parsed = LOADED_JSON_PER_BYTE * sum((directory / n).stat().st_size for n in ("card.json", "pipeline.json"))
    return LOAD_ALLOWANCE + arrays + parsed


def load_once(directory: Path) -> tuple[str, float, float]:
    """(outcome, peak RSS in GB, seconds) of `qism info` on the model, in a fresh process."""
    code = (
        "import resource, sys\nfrom qism.cli import app\ntry:\n    app(['info', sys.argv[1]])\n"
        "finally:\n    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(directory)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = int(done.stderr.strip().splitlines()[-1]) * 1024 / 1e9
    outcome = "loaded" if done.returncode == 0 else "refused"
    return outcome, peak, seconds


def main() -> None:
    from qism.model import MAX_ARRAYS_BYTES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[2, 8, 14, 15, 30])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for labels in args.labels:
            directory = Path(scratch) / f"m{labels}"
            hostile_model(directory, labels)
            size = sum(path.stat().st_size for path in directory.iterdir()) / 1e6
            outcome, peak, seconds = load_once(directory)
            rows.append(
                {
                    "labels": labels,
                    "files_mb": round(size, 1),
                    "claimed_gb": round(claimed(directory) / 1e9, 2),
                    "outcome": outcome,
                    "peak_rss_gb": round(peak, 2),
                    "seconds": round(seconds, 1),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| labels | files MB | claimed GB | outcome | peak RSS GB | seconds |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(value) for value in row.values()) + " |")
    print(f"(cap {MAX_ARRAYS_BYTES / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
