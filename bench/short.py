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
                          [--model DIR] [--merge RECORD ...]
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
from unseen_outlets import RECIPE, ROOT, group_result, parse_settings, read_recipe, unseen_record


def rows_by_length(prepared, articles: np.ndarray) -> dict[str, np.ndarray]:
    """These articles' rows, and their short forms' rows, by length."""
    from qism.trainer import short_forms_of

    return {"article": articles, **short_forms_of(prepared, articles)}


def scores_by_length(predict_proba, classes, prepared, rows: dict[str, np.ndarray]) -> dict:
    """Accuracy, macro-F1 over the sections present and calibration error of each length's rows."""
    from qism.scores import score

    results = {}
    for length in SHORT_INPUT_LENGTHS:
        chosen = rows.get(length, np.arange(0))
        if not len(chosen):
            continue
        proba = predict_proba([prepared.texts[i] for i in chosen])
        truth = [prepared.labels[i] for i in chosen]
        scored = score(truth, classes[proba.argmax(axis=1)], list(classes), proba)
        results[length] = {
            "documents": len(chosen),
            "accuracy": scored["accuracy"],
            "macro_f1": scored["macro_f1"],
            "ece": scored["expected_calibration_error"],
        }
    return results


def saved_model_held_out(model_dir: Path, prepared, config) -> dict:
    """A saved model (trained on this recipe's split, with or without short forms) scored on the
    held-out split by length, without fitting: the model before titles trained, or the one shipped."""
    from qism import load_model
    from qism.trainer import split

    model = load_model(model_dir)
    _, test_rows = split(prepared, config.test_size, config.seed)
    rows = rows_by_length(prepared, test_rows)
    return scores_by_length(model.predict_proba, np.asarray(model.labels), prepared, rows)


def fit_and_score(
    prepared, config, train_rows, test_rows, weights, jobs, articles_only, fitted=lambda weight, pipeline, seconds: None
) -> dict[float, dict]:
    """Fit the features once on `train_rows` and a classifier per title weight; score `test_rows`'
    articles and short forms by length, per weight. `fitted` gets each weight's fitted pipeline."""
    from qism.trainer import build_pipeline, training_weights

    started = time.perf_counter()
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
        results[weight] = scores_by_length(pipeline.predict_proba, classifier.classes_, prepared, rows)
        fitted(weight, pipeline, time.perf_counter() - started)
    return results


def replace_config(config, **changes):
    from dataclasses import replace

    return replace(config, **changes)


def held_out(prepared, config, weights, jobs, articles_only) -> dict[float, dict]:
    """The recipe's held-out split: fit on its training side (articles with their short forms)."""
    from qism.trainer import split

    train_rows, test_rows = split(prepared, config.test_size, config.seed)
    return fit_and_score(prepared, config, train_rows, test_rows, weights, jobs, articles_only)


def left_out(prepared, config, group, weights, jobs, articles_only, fitted) -> dict[float, dict]:
    """Fit on every document not of `group` (no held-out split), score the group's."""
    out = prepared.outlet_array() == group
    train_rows, test_rows = np.flatnonzero(~out), np.flatnonzero(out)
    config = replace_config(config, test_size=0)
    return fit_and_score(prepared, config, train_rows, test_rows, weights, jobs, articles_only, fitted)


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


def measure(args, plan, prepared, settings: dict) -> dict:
    """The record: scores by length held out and per group left out, per title weight; each group's
    `unseen` results (bench/unseen_outlets.py's), per title weight."""
    from qism.card import short_input_table

    config = plan.config
    weights = [float(w) for w in args.title_weights.split(",")] if args.title_weights else [config.title_weight]
    record = {"held_out": None, "left_out": []}
    if args.model:
        record["held_out"] = {f"model {args.model.name}": saved_model_held_out(args.model, prepared, config)}
        return record
    if not args.only:
        scored = held_out(prepared, config, weights, args.jobs, args.articles_only)
        record["held_out"] = {str(w): s for w, s in scored.items()}
        print(short_input_table(record), file=sys.stderr)
    groups = [] if args.held_out_only else sorted(set(prepared.outlets), key=str.lower)
    for group in [group for group in groups if group in args.only] if args.only else groups:
        entry = {"group": group, "unseen": {}}

        def fitted(weight, pipeline, seconds, entry=entry):
            entry["unseen"][str(weight)] = group_result(pipeline, prepared, entry["group"], seconds)

        scored = left_out(prepared, config, group, weights, args.jobs, args.articles_only, fitted)
        record["left_out"].append({**entry, "scores": {str(w): s for w, s in scored.items()}})
        print(f"{group}: {json.dumps(record['left_out'][-1]['scores'])}", file=sys.stderr)
    return record


def merged(records: list[dict]) -> dict:
    """Records of runs over parts of the groups (`--only`) or of saved models (`--model`) as one:
    every held-out row, every group left out (in order); the means follow."""
    held_out = {key: scores for r in records for key, scores in (r.get("held_out") or {}).items()}
    record = {**records[0], "held_out": held_out or None}
    record["left_out"] = sorted((g for r in records for g in r["left_out"]), key=lambda g: g["group"].lower())
    record["seconds"] = sum(r["seconds"] for r in records)
    return record


def with_means(record: dict) -> dict:
    if record["left_out"]:
        weights = list(record["left_out"][0]["scores"])
        record["left_out_mean"] = {w: mean_by_length(record["left_out"], w) for w in weights}
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--title-weights", help="title_weight values, comma-separated (default: the recipe's)")
    parser.add_argument("--articles-only", action="store_true", help="train on articles only (short forms scored only)")
    parser.add_argument("--held-out-only", action="store_true", help="score the held-out split only")
    parser.add_argument("--model", type=Path, help="score this saved model on the held-out split (no fitting)")
    parser.add_argument("--only", action="append", default=[], metavar="GROUP", help="leave out only these groups")
    parser.add_argument(
        "--merge", nargs="+", type=Path, metavar="RECORD", help="merge records of runs with --only (of this recipe)"
    )
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path, metavar="FILE", help="also write the record (JSON, atomically)")
    parser.add_argument(
        "--save-unseen",
        type=Path,
        metavar="FILE",
        help="also write bench/unseen_outlets.py's record from the same fits (the recipe's title weight), "
        "for a recipe that reads every source that has titles with titles = also, as this bench does",
    )
    args = parser.parse_args()
    from qism import plan_training
    from qism.card import short_input_table
    from qism.files import write_atomically

    started = time.perf_counter()
    settings = parse_settings(args.settings)
    recipe_plan = plan_training(recipe=args.recipe, train_options=settings)
    if args.merge:
        record = merged([json.loads(path.read_text(encoding="utf-8")) for path in args.merge])
        record["config"] = recipe_plan.config.to_dict()  # its title_weight one of those measured
    else:
        plan, prepared = read_recipe(args.recipe, settings, {"titles": "also"})
        print(f"{len(prepared.texts):,} documents read", file=sys.stderr)
        recipe = args.recipe.resolve()
        record = measure(args, plan, prepared, settings)
        record.update(
            recipe=str(recipe.relative_to(ROOT) if recipe.is_relative_to(ROOT) else args.recipe),
            settings=settings,
            articles_only=args.articles_only,
            seconds=round(time.perf_counter() - started, 1),
            sources=plan.sources,
            source_options=recipe_plan.source_options_dict(),
            config=plan.config.to_dict(),
            label_map=plan.label_map.to_dict() if plan.label_map else None,
        )
    record = with_means(record)
    weight = str(recipe_plan.config.title_weight)
    unseen = [group["unseen"][weight] for group in record["left_out"] if weight in group.get("unseen", {})]
    if args.save_unseen and (record["articles_only"] or len(unseen) < len(record["left_out"])):
        sys.exit(f"--save-unseen: the groups were not all measured with the recipe's title_weight {weight}")
    if args.save_unseen:
        unseen_report = unseen_record(args.recipe, recipe_plan, settings, unseen, record["seconds"])
        write_atomically(args.save_unseen, (json.dumps(unseen_report, indent=1, ensure_ascii=False) + "\n").encode())
    if args.save:
        write_atomically(args.save, (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode())
    print(json.dumps(record, indent=2, ensure_ascii=False) if args.json else short_input_table(record))


if __name__ == "__main__":
    main()
