"""A newsroom's own model from a few labeled articles: `qism train --base` on outlets the base never saw.

For each group of bench/unseen_outlets.py (a corpus or outlet), the default recipe is trained without
it (the base; cached with joblib, so sweeps are fast), and k = 10, 25, 50 articles per section of the
group are labeled (seeded, nested: the 10 are among the 25); of the group's other articles, `--pool`
are its unlabeled articles (for `--unlabeled` and `qism select`) and up to `--max-test` the test.
Macro-F1 on the test, over the sections the group has:

- base: the base model as it is (k = 0);
- alone: `qism train` on the k articles per section alone (default options);
- --base: `qism train --base` on them;
- --unlabeled: `qism train --base --unlabeled` with the pool;
- select: `qism train --base` on k x sections articles of the pool chosen by `qism select` (with
  the base), against the k per section at random (the --base column).

    python bench/adapt.py [--only hespress] [--ks 10,25,50] [--seed 1] [--pool 1000] [--max-test 2000]
                          [--parts alone,base,unlabeled,select] [--set KEY=VALUE] [--json] [--save FILE]

Run it from the repository root with the corpora in ../shared/corpora; base models are cached in
bench/.cache/ (one per group, recipe and settings: about 20 MB each).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unseen_outlets import RECIPE, ROOT, parse_settings, read_recipe

CACHE = ROOT / "bench" / ".cache"
METHODS = ("base", "alone", "--base", "--unlabeled", "select")


def base_model(prepared, plan, group: str, jobs: int):
    """The recipe trained without `group` (no held-out split), from the cache when it is there."""
    import joblib
    from qism.model import Model
    from qism.trainer import Prepared, fit

    config = replace(plan.config, test_size=0)
    key = json.dumps([group, plan.sources, config.to_dict(), plan.label_map.to_dict()], sort_keys=True, default=str)
    path = CACHE / f"adapt-base-{group}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.joblib"
    if path.exists():
        pipeline = joblib.load(path)
    else:
        keep = np.flatnonzero(prepared.outlet_array() != group)
        training = Prepared(
            texts=[prepared.texts[i] for i in keep],
            labels=[prepared.labels[i] for i in keep],
            sources=[],
            dropped={},
            outlets=list(prepared.outlet_array()[keep]),
        )
        pipeline = fit(training, config, n_jobs=jobs).pipeline
        CACHE.mkdir(parents=True, exist_ok=True)
        joblib.dump(pipeline, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    names = {label: plan.label_map.names[label] for label in pipeline.classes_}
    return Model(pipeline, {"name": f"without-{group}", "label_names": names})


def split_group(labels: np.ndarray, rows: np.ndarray, ks: list[int], pool: int, max_test: int, seed: int):
    """Per k the labeled rows (k per section, nested), then the pool and the test rows."""
    rng = np.random.default_rng(seed)
    labeled = {k: [] for k in ks}
    rest = []
    for section in sorted(set(labels[rows])):
        mine = rng.permutation(rows[labels[rows] == section])
        for k in ks:
            labeled[k].extend(mine[:k])
        rest.extend(mine[max(ks) :])
    rest = rng.permutation(np.asarray(rest, dtype=np.int64))
    return {k: np.asarray(v, dtype=np.int64) for k, v in labeled.items()}, rest[:pool], rest[pool : pool + max_test]


def macro_f1(model, texts, truth) -> float:
    predicted = np.asarray(model.predict(texts), dtype=object)
    return float(f1_score(truth, predicted, labels=sorted(set(truth)), average="macro", zero_division=0))


def adapted(base, texts, labels, unlabeled=None, jobs: int = -1, seed: int = 42):
    from qism.adapt import fit_toward
    from qism.model import Model

    pipeline, record = fit_toward(base, texts, labels, sorted(set(labels)), unlabeled, seed=seed, n_jobs=jobs)
    return Model(pipeline, {"label_names": {}}), record


def alone(texts, labels, jobs: int, seed: int):
    from qism.config import TrainConfig
    from qism.model import Model
    from qism.trainer import Prepared, fit

    prepared = Prepared(texts=list(texts), labels=list(labels), sources=[], dropped={})
    return Model(fit(prepared, TrainConfig(test_size=0, seed=seed), n_jobs=jobs).pipeline, {})


def chosen_by_select(base, texts, n: int) -> list[int]:
    """Positions in `texts` of the `n` articles `qism select` chooses with the base model."""
    from qism.corpus import Document
    from qism.select import select

    rows = select(base, (Document(text=text, id=str(i)) for i, text in enumerate(texts)), n)
    return [int(row["id"]) for row in rows]


def run_group(prepared, plan, group: str, args) -> list[dict]:
    texts = np.asarray(prepared.texts, dtype=object)
    labels = np.asarray(prepared.labels, dtype=object)
    started = time.perf_counter()
    base = base_model(prepared, plan, group, args.jobs)
    rows = np.flatnonzero((prepared.outlet_array() == group) & np.isin(labels, list(base.labels)))
    labeled, pool, test = split_group(labels, rows, args.ks, args.pool, args.max_test, args.seed)
    test_texts, truth = list(texts[test]), labels[test]
    base_f1 = macro_f1(base, test_texts, truth)
    print(f"{group}: base {base_f1:.3f} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    results = []
    for k in args.ks:
        mine, scores, started = labeled[k], {"base": base_f1}, time.perf_counter()
        if "alone" in args.parts:
            scores["alone"] = macro_f1(alone(texts[mine], labels[mine], args.jobs, args.seed), test_texts, truth)
        model, record = adapted(base, list(texts[mine]), list(labels[mine]), jobs=args.jobs, seed=args.seed)
        scores["--base"] = macro_f1(model, test_texts, truth)
        if "unlabeled" in args.parts:
            model, with_pool = adapted(
                base, list(texts[mine]), list(labels[mine]), list(texts[pool]), args.jobs, args.seed
            )
            scores["--unlabeled"] = macro_f1(model, test_texts, truth)
            record["self_training"] = with_pool.get("self_training")
        if "select" in args.parts:
            picked = pool[chosen_by_select(base, list(texts[pool]), len(mine))]
            if len(set(labels[picked])) >= 2:
                model, _ = adapted(base, list(texts[picked]), list(labels[picked]), jobs=args.jobs, seed=args.seed)
                scores["select"] = macro_f1(model, test_texts, truth)
        results.append(
            {"group": group, "k": k, "labeled": len(mine), "test": len(test), "macro_f1": scores, "record": record}
        )
        shown = " ".join(f"{name} {value:.3f}" for name, value in scores.items())
        print(f"{group} k={k}: {shown} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return results


def table(results: list[dict], ks: list[int]) -> str:
    lines = ["| left out | k | " + " | ".join(METHODS) + " |", "|---|---:|" + "---:|" * len(METHODS)]
    for r in results:
        cells = [f"{r['macro_f1'][m]:.3f}" if m in r["macro_f1"] else "" for m in METHODS]
        lines.append(f"| {r['group']} | {r['k']} | " + " | ".join(cells) + " |")
    for k in ks:
        mine = [r for r in results if r["k"] == k]
        cells = []
        for m in METHODS:
            values = [r["macro_f1"][m] for r in mine if m in r["macro_f1"]]
            cells.append(f"**{np.mean(values):.3f}**" if len(values) == len(mine) and values else "")
        lines.append(f"| **mean** | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--only", action="append", default=[], metavar="GROUP")
    parser.add_argument("--ks", default="10,25,50", help="articles labeled per section")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", type=int, default=1000, help="unlabeled articles of the group")
    parser.add_argument("--max-test", type=int, default=2000)
    parser.add_argument("--parts", default="alone,unlabeled,select")
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    args.ks = sorted(int(k) for k in args.ks.split(","))
    args.parts = set(args.parts.split(","))
    plan, prepared = read_recipe(args.recipe, parse_settings(args.settings))
    groups = sorted(set(prepared.outlets), key=str.lower)
    groups = [group for group in groups if not args.only or group in args.only]
    results = []
    for group in groups:
        results.extend(run_group(prepared, plan, group, args))
        if args.save:
            args.save.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=float) + "\n")
    print(json.dumps(results, indent=1, ensure_ascii=False, default=float) if args.json else table(results, args.ks))


if __name__ == "__main__":
    main()
