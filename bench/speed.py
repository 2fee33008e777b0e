"""Labeling speed: qism against fastText, on full articles and on headlines, in process and as a whole
`qism predict` process, on one core and on every core, with each one's peak memory; and one article
from the shell.

Texts: the SANAD-Khaleej and ANT v2.1 (deduplicated) test splits of bench/vs_fasttext.py (stratified
80/20, seed 42), and 200,000 headline-length texts: the first 120 characters (white space collapsed)
of those test articles, in turn. qism labels with the shipped default model (or `--model DIR`);
fastText is trained on each corpus's training split with vs_fasttext.py's settings (the headlines are
labeled by the ANT model). Every measurement runs in a fresh process, so its peak RSS is its own; a
rate is the best of three passes (raw text in, labels out). `--pure` measures qism's pure-Python path
(the compiled extension switched off), for the gain the extension gives.

    pip install -e ".[bench]" && python bench/speed.py [--model DIR] [--pure] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vs_fasttext import FASTTEXT_PARAMS, LABELING_PASSES, _one_line, splits

HEADLINES = 200_000
HEADLINE_CHARS = 120
ONE_ARTICLE = "أعلن المنتخب الوطني لكرة القدم قائمة اللاعبين المشاركين في كأس آسيا التي تنطلق الشهر المقبل"


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def best_rate(label, n_docs: int) -> float:
    """The best docs/s of LABELING_PASSES passes: the least disturbed one on a shared machine."""
    rates = []
    for _ in range(LABELING_PASSES):
        started = time.perf_counter()
        label()
        rates.append(n_docs / (time.perf_counter() - started))
    return max(rates)


def read_texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


# --- what runs in a fresh process ---------------------------------------------------------------


def qism_in_process(texts_file: Path, model_dir: str | None, jobs: int, pure: bool) -> dict:
    from qism import load_model

    if pure:
        from qism import clean
        from qism.features import hashing

        clean._native = None
        hashing._native = None
    texts = read_texts(texts_file)
    model = load_model(model_dir)
    model.set_jobs(jobs)
    return {"docs_per_second": best_rate(lambda: model.predict(texts), len(texts)), "peak_rss_mb": peak_rss_mb()}


def fasttext_in_process(texts_file: Path, model_file: str) -> dict:
    import fasttext

    texts = read_texts(texts_file)
    model = fasttext.load_model(model_file)
    rate = best_rate(lambda: model.predict([_one_line(text) for text in texts]), len(texts))
    return {"docs_per_second": rate, "peak_rss_mb": peak_rss_mb()}


def fasttext_train(train_file: Path, model_file: str, epoch: str) -> dict:
    import fasttext

    model = fasttext.train_supervised(input=str(train_file), verbose=0, **{**FASTTEXT_PARAMS, "epoch": int(epoch)})
    model.save_model(model_file)
    return {}


WORKERS = {
    "qism": qism_in_process,
    "fasttext": fasttext_in_process,
    "fasttext-train": fasttext_train,
    "prepare": lambda workdir, epoch: prepare(Path(workdir), int(epoch)),
}


def in_child(*args) -> dict:
    """One measurement in a fresh process (this script with --worker)."""
    child = subprocess.run(
        [sys.executable, __file__, "--worker", *map(str, args)], capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{child.stderr}")
    return json.loads(child.stdout.splitlines()[-1])


# --- whole processes ----------------------------------------------------------------------------


def qism_command() -> list[str]:
    """The `qism` script beside this Python (the one `pip install` made)."""
    return [str(Path(sys.executable).with_name("qism"))]


def whole_process(args: list[str], n_docs: int = 1, passes: int = LABELING_PASSES) -> dict:
    """Best docs/s (and best seconds) of `qism ARGS` run `passes` times, with its peak RSS (workers included)."""
    seconds, peak = [], 0.0
    for _ in range(passes):
        started = time.perf_counter()
        child = subprocess.Popen(qism_command() + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds.append(time.perf_counter() - started)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"qism {' '.join(args)} failed: {child.stderr.read().decode()}")
        child.stderr.close()
        peak = max(peak, usage.ru_maxrss / 1024)
    return {"docs_per_second": n_docs / min(seconds), "seconds": min(seconds), "peak_rss_mb": peak}


# --- the table ----------------------------------------------------------------------------------


def prepare(workdir: Path, epoch: int) -> list[tuple[str, str, str, bool]]:
    """(name, test texts file, fastText model, whether to time `qism predict` on it) for each corpus
    present, and the headlines. Run in a process of its own: a process started later by one that
    held the corpora would count their memory in its peak (Linux keeps the peak RSS across exec)."""
    sets = []
    for name, train, test in splits(skip_loo=True):
        texts_file, train_file = workdir / f"{len(sets)}.jsonl", workdir / f"{len(sets)}.train"
        texts_file.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in test), encoding="utf-8")
        with open(train_file, "w", encoding="utf-8") as out:
            out.writelines(f"__label__{r['label'].replace(' ', '_')} {_one_line(r['text'])}\n" for r in train)
        model_file = workdir / f"{len(sets)}.bin"
        in_child("fasttext-train", train_file, model_file, epoch)
        sets.append((f"{name} test articles", str(texts_file), str(model_file), False))
        print(f"ready: {name}", file=sys.stderr)
    if not sets:
        raise SystemExit("no corpus found in ../shared/corpora")
    articles = [t for _, path, _, _ in sets for t in read_texts(path)]
    headlines = workdir / "headlines.jsonl"
    with open(headlines, "w", encoding="utf-8") as out:
        for i, text in zip(range(HEADLINES), itertools.cycle(articles)):
            out.write(json.dumps({"id": str(i), "text": _one_line(text)[:HEADLINE_CHARS]}, ensure_ascii=False) + "\n")
    sets.append((f"{HEADLINES:,} headlines ({HEADLINE_CHARS} characters)", str(headlines), sets[-1][2], True))
    return sets


def count_lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def measure(args, workdir: Path) -> list[dict]:
    rows = []
    for name, texts_file, fasttext_model, whole in in_child("prepare", workdir, args.epoch):
        n_docs = count_lines(texts_file)
        fast = in_child("fasttext", texts_file, fasttext_model)
        for jobs, cores in ((1, "one core"), (-1, "every core")):
            ours = in_child("qism", texts_file, args.model or "", jobs, int(args.pure))
            rows.append({"work": f"{name}, in process, {cores}", "qism": ours, "fastText": fast})
        if whole or args.whole_articles:
            model = ["--model", args.model] if args.model else []
            for jobs, cores in (("1", "one core"), ("-1", "every core")):
                command = ["predict", *model, "--input", str(texts_file), "--output", str(workdir / "out.jsonl")]
                ours = whole_process([*command, "--format", "jsonl", "--jobs", jobs, "--quiet"], n_docs)
                work = f"{name}, `qism predict --input --output`, {cores}"
                rows.append({"work": work, "qism": ours, "fastText": fast})
        print(f"done: {name}", file=sys.stderr)
    model = ["--model", args.model] if args.model else []
    article = whole_process(["predict", *model, ONE_ARTICLE])
    rows.append({"work": "one article from the shell (seconds)", "qism": article, "fastText": None})
    rows.append({"work": "`qism --help` (seconds)", "qism": whole_process(["--help"]), "fastText": None})
    return rows


def print_table(rows: list[dict]) -> None:
    print("| work | qism docs/s | fastText docs/s | ratio | qism peak MB | fastText peak MB |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        ours, theirs = row["qism"], row["fastText"]
        if theirs is None:
            print(f"| {row['work']} | {ours['seconds']:.3f} s | – | – | {ours['peak_rss_mb']:,.0f} | – |")
            continue
        ratio = ours["docs_per_second"] / theirs["docs_per_second"]
        print(
            f"| {row['work']} | {ours['docs_per_second']:,.0f} | {theirs['docs_per_second']:,.0f} | {ratio:.2f}x "
            f"| {ours['peak_rss_mb']:,.0f} | {theirs['peak_rss_mb']:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="the qism model folder [default: the shipped default model]")
    parser.add_argument("--pure", action="store_true", help="qism's pure-Python path (the extension off) in process")
    parser.add_argument("--whole-articles", action="store_true", help="also `qism predict` as a process on articles")
    parser.add_argument(
        "--epoch",
        type=int,
        default=FASTTEXT_PARAMS["epoch"],
        help="fastText's training epochs (its labeling speed does not depend on them; 1 for a quick run)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)  # internal: one measurement here
    args = parser.parse_args()
    if args.worker:
        name, *rest = args.worker
        if name == "qism":
            rest = [Path(rest[0]), rest[1] or None, int(rest[2]), bool(int(rest[3]))]
        print(json.dumps(WORKERS[name](*rest)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args, Path(tmp))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
