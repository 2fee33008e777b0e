"""The default recipe on short input: titles alone, title + lead sentence, and full articles, of the
recipe's held-out split and of each outlet left out (as bench/unseen_outlets.py).

A model learned from articles reads a headline badly; this measures by length (accuracy, macro-F1
over the sections present, expected calibration error) so that a recipe's title levers are chosen
on both the held-out split and outlets it never saw. Sources are read with `titles = "also"`
whatever the recipe says, so short forms exist to score; they train only when the recipe reads
them (`--articles-only` leaves them out of training, the model before). One featurization serves
every `--title-weights` value (the featurizer does not read weights).

    python bench/short.py [--recipe data/recipes/default.toml] [--set KEY=VALUE ...]
                          [--title-weights 0.5,1] [--articles-only] [--held-out-only | --only GROUP ...]
                          [--jobs N] [--json] [--save FILE]

`--save FILE` writes the record (JSON) that a recipe's `short_input = "FILE"` puts in the model
card when it was measured on the recipe's sources and options. The default recipe's:

    python bench/short.py --save data/recipes/default-short-input.json

Run it from the repository root with the corpora in ../shared/corpora.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from qism.card import SHORT_INPUT_LENGTHS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unseen_outlets import RECIPE, ROOT, parse_settings, read_recipe


def rows_by_length(prepared, articles: np.ndarray) -> dict[str, np.ndarray]:
    """These articles' rows, and their short forms' rows, by length."""
    from qism.trainer import short_forms_of

    return {"article": articles, **short_forms_of(prepared, articles)}


def scores_by_length(features, classifier, prepared, rows: dict[str, np.ndarray]) -> dict:
    """Accuracy, macro-F1 over the sections present and calibration error of each length's rows."""
    from qism.scores import score

    results = {}
    for length in SHORT_INPUT_LENGTHS:
        chosen = rows.get(length, np.arange(0))
        if not len(chosen):
            continue
        proba = classifier.predict_proba(features.transform([prepared.texts[i] for i in chosen]))
        truth = [prepared.labels[i] for i in chosen]
        scored = score(truth, classifier.classes_[proba.argmax(axis=1)], list(classifier.classes_), proba)
        results[length] = {
            "documents": len(chosen),
            "accuracy": scored["accuracy"],
            "macro_f1": scored["macro_f1"],
            "ece": scored["expected_calibration_error"],
        }
    return results


def fit_and_score(prepared, config, train_rows, test_rows, weights, jobs, articles_only) -> dict[float, dict]:
    """Fit the features once on `train_rows` and a classifier per title weight; score `test_rows`'
    articles and short forms by length, per weight."""
    from qism.trainer import build_pipeline, training_weights

    parts = np.asarray(prepared.parts or [""] * len(prepared.texts), dtype=object)
    if articles_only:
        train_rows = train_rows[parts[train_rows] == ""]
    pipeline = build_pipeline(config, jobs)
    features = pipeline.named_steps["features"]
    X = features.fit_transform([prepared.texts[i] for i in train_rows])
    labels = np.asarray(prepared.labels, dtype=object)[train_rows]
    outlets = prepared.outlet_array()[train_rows]
    rows = rows_by_length(prepared, test_rows[parts[test_rows] == ""])
    results = {}
    for weight in weights:
        weighted = replace_config(config, title_weight=weight)
        classifier = pipeline.named_steps["classifier"]
        classifier.fit(X, labels, sample_weight=training_weights(prepared, weighted, train_rows), outlets=outlets)
        results[weight] = scores_by_length(features, classifier, prepared, rows)
    return results


def replace_config(config, **changes):
    from dataclasses import replace

    return replace(config, **changes)


def held_out(prepared, config, weights, jobs, articles_only) -> dict[float, dict]:
    """The recipe's held-out split: fit on its training side (articles with their short forms)."""
    from qism.trainer import split

    train_rows, test_rows = split(prepared, config.test_size, config.seed)
    return fit_and_score(prepared, config, train_rows, test_rows, weights, jobs, articles_only)


def left_out(prepared, config, group, weights, jobs, articles_only) -> dict[float, dict]:
    """Fit on every document not of `group` (no held-out split), score the group's."""
    out = prepared.outlet_array() == group
    return fit_and_score(
        prepared,
        replace_config(config, test_size=0),
        np.flatnonzero(~out),
        np.flatnonzero(out),
        weights,
        jobs,
        articles_only,
    )


def mean_by_length(results: list[dict], weight: float) -> dict:
    """Mean macro-F1 and accuracy per length over the groups that have that length."""
    means = {}
    for length in SHORT_INPUT_LENGTHS:
        scored = [r["scores"][str(weight)][length] for r in results if length in r["scores"][str(weight)]]
        if scored:
            means[length] = {
                "groups": len(scored),
                "accuracy": float(np.mean([s["accuracy"] for s in scored])),
                "macro_f1": float(np.mean([s["macro_f1"] for s in scored])),
                "ece": float(np.mean([s["ece"] for s in scored])),
            }
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--title-weights", default=None, help="title_weight values, comma-separated (default: the recipe's)"
    )
    parser.add_argument("--articles-only", action="store_true", help="train on articles only (short forms scored only)")
    parser.add_argument("--held-out-only", action="store_true", help="score the held-out split only")
    parser.add_argument("--only", action="append", default=[], metavar="GROUP", help="leave out only these groups")
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path, metavar="FILE", help="also write the record (JSON, atomically)")
    args = parser.parse_args()
    from qism import plan_training
    from qism.card import short_input_table
    from qism.files import write_atomically

    started = time.perf_counter()
    settings = parse_settings(args.settings)
    plan, prepared = read_recipe(args.recipe, settings, {"titles": "also"})
    config = plan.config
    weights = [float(w) for w in args.title_weights.split(",")] if args.title_weights else [config.title_weight]
    print(f"{len(prepared.texts):,} documents read", file=sys.stderr)
    record = {"held_out": None, "left_out": []}
    if not args.only:
        scored = held_out(prepared, config, weights, args.jobs, args.articles_only)
        record["held_out"] = {str(w): s for w, s in scored.items()}
        print(short_input_table(record), file=sys.stderr)
    groups = [] if args.held_out_only else sorted(set(prepared.outlets), key=str.lower)
    if args.only:
        groups = [group for group in groups if group in args.only]
    for group in groups:
        scored = left_out(prepared, config, group, weights, args.jobs, args.articles_only)
        record["left_out"].append({"group": group, "scores": {str(w): s for w, s in scored.items()}})
        print(f"{group}: {json.dumps(record['left_out'][-1]['scores'])}", file=sys.stderr)
    if record["left_out"]:
        record["left_out_mean"] = {str(w): mean_by_length(record["left_out"], w) for w in weights}
    recipe = args.recipe.resolve()
    record.update(
        recipe=str(recipe.relative_to(ROOT) if recipe.is_relative_to(ROOT) else args.recipe),
        settings=settings,
        articles_only=args.articles_only,
        seconds=round(time.perf_counter() - started, 1),
        sources=plan.sources,
        source_options=plan_training(recipe=args.recipe, train_options=settings).source_options_dict(),
        config=config.to_dict(),
        label_map=plan.label_map.to_dict() if plan.label_map else None,
    )
    if args.save:
        write_atomically(args.save, (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode())
    print(json.dumps(record, indent=2, ensure_ascii=False) if args.json else short_input_table(record))


if __name__ == "__main__":
    main()
