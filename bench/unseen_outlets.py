"""The default recipe on outlets it never saw: leave one corpus or outlet out, train on the rest,
score each section on what was left out.

A model that learned an outlet's style instead of its topics scores well on its held-out split (the
same outlets) and badly on a new outlet; this is the measure to choose the recipe's defaults and
levers by. The recipe is read as `qism train --recipe` reads it (label map, read options, [train]);
its documents are read, relabeled and deduplicated once, then for each left-out group a model is
fitted on every other document (no held-out split) and scored on the group: accuracy, macro-F1 over
the sections the group has, and F1 per section.

    python bench/unseen_outlets.py [--recipe data/recipes/default.toml] [--set lead_words=0 ...]
                                   [--only hespress] [--jobs N] [--json] [--save FILE]

`--save FILE` writes the record (JSON) that a recipe's `unseen_outlets = "FILE"` puts in the model
card: `qism train --recipe` checks that it was measured on the recipe's sources with its options and
label map, and leaves it out otherwise. The default recipe's is data/recipes/default-unseen-outlets.json:

    python bench/unseen_outlets.py --save data/recipes/default-unseen-outlets.json

Run it from the repository root with the corpora in ../shared/corpora (the recipe's paths are
relative to the folder it runs in). Groups: SANAD (alkhaleej), each ANT outlet, Hespress, ASND.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "data" / "recipes" / "default.toml"


def parse_settings(pairs: list[str]) -> dict:
    """`key=value` pairs as [train] overrides; values are Python literals (true/false accepted)."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"--set takes KEY=VALUE, a [train] option; got {pair!r}")
        value = {"true": "True", "false": "False", "none": "None"}.get(value.lower(), value)
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key] = value
    return settings


def read_recipe(recipe_path: Path, settings: dict, read_options: dict | None = None):
    """The recipe's training plan (with `settings` over its [train], `read_options` over every
    source's) and its documents, read, relabeled and deduplicated as `qism train` does."""
    from qism import plan_training, read_source
    from qism.trainer import prepare

    plan = plan_training(recipe=recipe_path, train_options=settings, read_options=read_options)
    documents = (
        (path, doc)
        for path in plan.sources
        for doc in read_source(path, plan.source_options.get(path, plan.read_options))
    )
    if plan.label_map is not None:
        documents = plan.label_map.apply(documents, Counter())
    return plan, prepare(documents, plan.config.dedupe)


def leave_out(prepared, config, group: str, jobs: int | None) -> dict:
    """Fit on every document not of `group`, score on the group's documents."""
    from qism.trainer import fit

    training = prepared.subset(np.flatnonzero(prepared.outlet_array() != group))
    started = time.perf_counter()
    pipeline = fit(training, replace(config, test_size=0), n_jobs=jobs).pipeline
    return group_result(pipeline, prepared, group, time.perf_counter() - started)


def group_result(pipeline, prepared, group: str, seconds: float) -> dict:
    """A model fitted without `group` scored on the group's articles (of the sections it knows)."""
    known = set(pipeline.classes_)
    articles = prepared.article_rows()
    out = prepared.outlet_array()[articles] == group
    rows = [i for i in articles[out] if prepared.labels[i] in known]
    truth = np.asarray([prepared.labels[i] for i in rows], dtype=object)
    proba = pipeline.predict_proba([prepared.texts[i] for i in rows])
    predicted = pipeline.classes_[proba.argmax(axis=1)]
    present = sorted(set(truth))
    per_label = f1_score(truth, predicted, labels=present, average=None, zero_division=0)
    support = Counter(truth)
    return {
        "group": group,
        "documents": len(rows),
        "unscored": int(out.sum()) - len(rows),
        "accuracy": float(np.mean(truth == predicted)),
        "macro_f1": float(np.mean(per_label)),
        "sections": {
            label: {
                "f1": float(f1),
                "support": support[label],
                "recall": float(np.mean(predicted[truth == label] == label)),
            }
            for label, f1 in zip(present, per_label)
        },
        "fit_seconds": round(seconds, 1),
    }


def unseen_record(recipe_path: Path, plan, settings: dict, results: list[dict], seconds: float) -> dict:
    """The record a recipe's `unseen_outlets` names, of these groups' results."""
    recipe = recipe_path.resolve()
    return {
        "recipe": str(recipe.relative_to(ROOT) if recipe.is_relative_to(ROOT) else recipe_path),
        "settings": settings,
        "results": results,
        "mean_macro_f1": float(np.mean([r["macro_f1"] for r in results])),
        "seconds": round(seconds, 1),
        "sources": plan.sources,
        "source_options": plan.source_options_dict(),
        "config": plan.config.to_dict(),
        "label_map": plan.label_map.to_dict() if plan.label_map else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a [train] option of the recipe (a lever to measure); repeatable",
    )
    parser.add_argument("--only", action="append", default=[], metavar="GROUP", help="leave out only these groups")
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--save",
        type=Path,
        metavar="FILE",
        help="also write the record for a recipe's `unseen_outlets` (JSON, atomically)",
    )
    args = parser.parse_args()
    from qism.card import unseen_outlets_table
    from qism.files import write_atomically

    started = time.perf_counter()
    settings = parse_settings(args.settings)
    plan, prepared = read_recipe(args.recipe, settings)
    config = plan.config
    groups = sorted(set(prepared.outlets), key=str.lower)
    if args.only:
        missing = sorted(set(args.only) - set(groups))
        if missing:
            sys.exit(f"no such group(s): {', '.join(missing)}; the recipe has {', '.join(groups)}")
        groups = [group for group in groups if group in args.only]
    results = []
    for group in groups:
        results.append(leave_out(prepared, config, group, args.jobs))
        print(f"{group}: macro-F1 {results[-1]['macro_f1']:.3f} ({results[-1]['fit_seconds']} s)", file=sys.stderr)
    report = unseen_record(args.recipe, plan, settings, results, time.perf_counter() - started)
    if args.save:
        write_atomically(args.save, (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode())
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(unseen_outlets_table(report))


if __name__ == "__main__":
    main()
