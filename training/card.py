"""The model card: what a model is, what it was trained on and how well it does, for people and programs.

`new_card` builds the card's dict when a model is trained; `card_markdown` renders it as `card.md`;
`scores_text`, `comparison_text`, `autotune_summary` and `data_notes` render its parts for the
terminal; `unseen_outlets_table` renders a recipe's scores on outlets left out, which
`bench/unseen_outlets.py` measures and `check_unseen_outlets` checks before they enter a card.
`per_label_rows` is the one reading of a scores dict's per-label figures that the text, Markdown and
HTML (report) renderers share.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from numbers import Real

from .errors import QismError, code_fence, markdown_text, printable, without_html


def qism_version() -> str:
    try:
        return version("qism")
    except PackageNotFoundError:
        return "unknown"


def package_versions() -> dict[str, str]:
    import joblib
    import numpy
    import scipy
    import sklearn

    return {
        "qism": qism_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def new_card(
    *,
    name: str,
    config: dict,
    labels: dict[str, int],
    split: dict[str, int],
    sources: list[dict],
    scores: dict | None,
    seconds: float,
    data: dict,
    label_map=None,
    unmapped: dict | None = None,
    autotune: dict | None = None,
    notes: list[str] | None = None,
    unseen_outlets: dict | None = None,
    short_input: dict | None = None,
) -> dict:
    """The card of a model just trained. `data` holds what preparing the corpus dropped, repaired,
    flagged and merged; `label_map` (a `recipe.LabelMap`) adds the labels' display names and the map
    itself (so evaluation can map raw labels as training did), `unmapped` the raw labels it dropped.
    `unseen_outlets` is the record of this training's recipe on outlets left out (see
    `check_unseen_outlets`), `short_input` its scores by length (`check_short_input`)."""
    card = {
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": package_versions(),
        "labels": labels,
        "config": config,
        "split": split,
        "sources": sources,
        **data,
        "scores": scores,
        "training_seconds": round(seconds, 2),
    }
    if label_map is not None:
        card["label_names"] = {label: label_map.names[label] for label in labels}
        card["label_map"] = label_map.to_dict()
        card["unmapped_labels"] = dict(sorted((unmapped or {}).items()))
    if autotune is not None:
        card["autotune"] = autotune
    if notes:
        card["notes"] = list(notes)
    if unseen_outlets is not None:
        card["unseen_outlets"] = unseen_outlets
    if short_input is not None:
        card["short_input"] = short_input
    return card


def _is_share(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and 0 <= value <= 1


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_scored_group(result) -> bool:
    if (
        not isinstance(result, dict)
        or not isinstance(result.get("group"), str)
        or not _is_count(result.get("documents"))
    ):
        return False
    sections = result.get("sections")
    return (
        _is_share(result.get("accuracy"))
        and _is_share(result.get("macro_f1"))
        and isinstance(sections, dict)
        and all(
            isinstance(label, str)
            and isinstance(row, dict)
            and _is_share(row.get("f1"))
            and _is_count(row.get("support"))
            for label, row in sections.items()
        )
    )


def check_unseen_outlets(record, where: str) -> dict:
    """A record of `bench/unseen_outlets.py --save` (a recipe trained with each outlet left out in
    turn, scored on it), checked for what the card shows: the sources and configuration it was
    measured with, and per left-out group its documents, accuracy, macro-F1 and F1 per section."""
    shape = (
        "results (a list of groups with group, documents, accuracy, macro_f1, sections), mean_macro_f1, sources, config"
    )
    if not isinstance(record, dict):
        raise QismError(f"{where}: expected a record of bench/unseen_outlets.py --save with {shape}")
    results = record.get("results")
    if (
        not isinstance(results, list)
        or not results
        or not all(map(_is_scored_group, results))
        or not _is_share(record.get("mean_macro_f1"))
        or not isinstance(record.get("config"), dict)
        or not isinstance(record.get("sources"), list)
    ):
        raise QismError(f"{where}: not a record of bench/unseen_outlets.py --save; it needs {shape}")
    return record


#: The lengths `bench/short.py` scores: the article as read, its title alone, title + lead sentence.
SHORT_INPUT_LENGTHS = ("article", "title", "title_lead")


def _is_scored_length(scored) -> bool:
    return isinstance(scored, dict) and all(
        length in SHORT_INPUT_LENGTHS
        and isinstance(row, dict)
        and all(_is_share(row.get(key)) for key in ("accuracy", "macro_f1", "ece"))
        for length, row in scored.items()
    )


def check_short_input(record, where: str) -> dict:
    """A record of `bench/short.py --save` (a recipe scored on held-out titles, title + lead and
    articles, and on each outlet left out), checked for what the card shows."""
    shape = "held_out and/or left_out_mean (scores by title weight and length), left_out, sources, config"
    by_weight = [record.get(key) for key in ("held_out", "left_out_mean")] if isinstance(record, dict) else []
    by_weight = [scores for scores in by_weight if scores is not None]  # a run may score either
    if (
        not by_weight
        or not all(isinstance(scores, dict) and all(map(_is_scored_length, scores.values())) for scores in by_weight)
        or not isinstance(record.get("left_out"), list)
        or not isinstance(record.get("config"), dict)
        or not isinstance(record.get("sources"), list)
    ):
        raise QismError(f"{where}: not a record of bench/short.py --save; it needs {shape}")
    return record


def measured_with(
    record: dict, sources: list[str], config: dict, label_map: dict | None, source_options: dict | None = None
) -> bool:
    """Whether a record of a bench was measured on these sources, with this configuration, label map
    (both as `to_dict` gives them) and these sources' read options (a record without them predates
    read options that change what trains, such as titles)."""
    return (
        record["sources"] == list(sources)
        and record["config"] == json.loads(json.dumps(config))
        and record.get("label_map") == (json.loads(json.dumps(label_map)) if label_map is not None else None)
        and record.get("source_options") == json.loads(json.dumps(source_options or {}))
    )


def _length_cell(row: dict | None) -> str:
    """One length's cell: documents (or groups, for a mean), accuracy, macro-F1, calibration error."""
    if row is None:
        return "–"
    count = f"{row['documents']:,}" if "documents" in row else f"{row['groups']} groups"
    return f"{count}, {row['accuracy']:.3f}, {row['macro_f1']:.3f}, {row['ece']:.3f}"


def short_input_table(record: dict) -> str:
    """Scores by length as a Markdown table: a row per split (held out, each group left out, the
    mean of those) and title weight; documents, accuracy, macro-F1 and calibration error per length."""
    columns = " | ".join(f"{length}: docs, acc., macro-F1, ECE" for length in SHORT_INPUT_LENGTHS)
    lines = [f"| scored on | title weight | {columns} |", "|" + "---|" * (2 + len(SHORT_INPUT_LENGTHS))]
    rows = [("held-out split", record.get("held_out"))]
    rows += [(f"{result['group']} left out", result["scores"]) for result in record.get("left_out", [])]
    rows += [("**mean of left out**", record.get("left_out_mean"))]
    for name, by_weight in rows:
        for weight, scored in (by_weight or {}).items():
            cells = " | ".join(_length_cell(scored.get(length)) for length in SHORT_INPUT_LENGTHS)
            lines.append(f"| {name} | {weight} | {cells} |")
    return "\n".join(lines)


def unseen_outlets_table(record: dict) -> str:
    """The scores on outlets left out as a Markdown table: a row per left-out group (accuracy,
    macro-F1 over the sections it has, F1 per section with its documents), then the means."""
    results = record["results"]
    labels = sorted({label for result in results for label in result["sections"]})
    lines = [
        "| left out | docs | accuracy | macro-F1 | " + " | ".join(map(markdown_text, labels)) + " |",
        "|" + "---|" * (4 + len(labels)),
    ]
    for result in results:
        cells = [
            f"{result['sections'][label]['f1']:.2f} ({result['sections'][label]['support']:,})"
            if label in result["sections"]
            else "–"
            for label in labels
        ]
        lines.append(
            f"| {markdown_text(result['group'])} | {result['documents']:,} | {result['accuracy']:.3f} | "
            f"{result['macro_f1']:.3f} | " + " | ".join(cells) + " |"
        )
    means = []
    for label in labels:
        values = [result["sections"][label]["f1"] for result in results if label in result["sections"]]
        means.append(f"{sum(values) / len(values):.2f}")
    accuracy = sum(result["accuracy"] for result in results) / len(results)
    lines.append(f"| **mean** | | {accuracy:.3f} | {record['mean_macro_f1']:.3f} | " + " | ".join(means) + " |")
    return "\n".join(lines)


def per_label_rows(scores: dict) -> list[tuple[str, float, float, float, int]]:
    """(label, precision, recall, F1, support) per label, in the scores' order."""
    return [
        (label, row["precision"], row["recall"], row["f1"], row["support"])
        for label, row in scores["per_label"].items()
    ]


def describe_knobs(knobs: dict) -> str:
    low, high = knobs["word_ngrams"]
    return f"{knobs['classifier']} C={knobs['C']:g} {knobs['class_weight'] or 'unweighted'} words {low}-{high}"


def autotune_summary(record: dict) -> str:
    """One line on a card's search, for `qism train` and `qism info`."""
    chosen = record["chosen"]
    skipped = f", {len(record['skipped'])} skipped for time" if record["skipped"] else ""
    return (
        f"autotune: {len(record['trials'])} trials in {record['seconds']:.1f} s{skipped}; chose "
        f"{describe_knobs(chosen['config'])} (CV macro-F1 {chosen['cv_macro_f1']:.4f}, {record['folds']} folds "
        f"of {record['documents']:,} training documents)"
    )


def headline_scores(scores: dict, share=lambda value: f"{value:.4f}") -> list[tuple[str, str]]:
    """The scores that sum a model up, named and formatted: accuracy and macro-F1, or for a
    multi-label model micro-, macro- and samples-F1, Hamming loss, subset accuracy and how many
    articles of several sections had all of them found. `share` formats a score."""
    if not scores.get("multi_label"):
        return [("accuracy", share(scores["accuracy"])), ("macro-F1", share(scores["macro_f1"]))]
    several = scores["several_labels"]
    return [
        ("micro-F1", share(scores["micro_f1"])),
        ("macro-F1", share(scores["macro_f1"])),
        ("samples-F1", share(scores["samples_f1"])),
        ("Hamming loss", share(scores["hamming_loss"])),
        ("subset accuracy", share(scores["subset_accuracy"])),
        ("all sections found", f"{several['all_found']:,} of {several['documents']:,} articles of several sections"),
    ]


def scores_text(scores: dict) -> str:
    headline = headline_scores(scores)
    name_width = max(len(name) for name, _ in headline) + 1 if scores.get("multi_label") else 11
    lines = [f"{'documents':<{name_width}}{scores['documents']:,}"]
    lines += [f"{name:<{name_width}}{value}" for name, value in headline]
    if "expected_calibration_error" in scores:
        lines.append(f"{'ECE':<{name_width}}{scores['expected_calibration_error']:.4f}")
    width = max([len(printable(label)) for label in scores["per_label"]] + [len("label")]) + 2
    lines += ["", f"{'label':<{width}}precision  recall  F1      support"]
    lines += [
        f"{printable(label):<{width}}{precision:<11.3f}{recall:<8.3f}{f1:<8.3f}{support}"
        for label, precision, recall, f1, support in per_label_rows(scores)
    ]
    matrix = scores["confusion_matrix"]
    lines += ["", "confusion matrix (rows: true, columns: predicted, in the order above)"]
    lines += [" ".join(f"{value:>6}" for value in row) for row in matrix["rows_true_columns_predicted"]]
    if "by_threshold" in scores:
        lines += ["", "threshold  coverage  accuracy   (predict --threshold: below it, the label is unknown)"]
        lines += [
            f"{row['threshold']:<11.3f}{row['coverage']:<10.1%}{row['accuracy']:.1%}" for row in scores["by_threshold"]
        ]
    return "\n".join(lines)


def comparison_text(comparison: dict) -> str:
    first, second = map(printable, comparison["models"])
    width = max(len(first), len(second), 10) + 2
    names = {
        "accuracy": "accuracy",
        "micro_f1": "micro-F1",
        "macro_f1": "macro-F1",
        "subset_accuracy": "subset accuracy",
        "hamming_loss": "Hamming loss",
        "expected_calibration_error": "ECE",
        "accuracy_at_coverage_90": "acc@90% cov",
    }
    shown = [names[key] for key in comparison["metrics"]]
    label_width = max([len(printable(label)) + 3 for label in comparison["per_label_f1"]] + [len(n) for n in shown]) + 2

    def line(name: str, row: dict) -> str:
        a, b = (f"{v:.4f}" if v is not None else "-" for v in row["values"])
        difference = f"{row['difference']:+.4f}" if row["difference"] is not None else "-"
        return f"{name:<{label_width}}{a:<{width}}{b:<{width}}{difference}"

    lines = [
        f"documents {comparison['documents']:,}",
        "",
        f"{'':<{label_width}}{first:<{width}}{second:<{width}}difference",
    ]
    lines += [line(names[key], row) for key, row in comparison["metrics"].items()]
    lines += [line(f"F1 {printable(label)}", row) for label, row in comparison["per_label_f1"].items()]
    return "\n".join(lines)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {count:,}" for key, count in counts.items())


def data_notes(card: dict, shown: Callable[[str], str] = printable) -> list[str]:
    """What training did with documents it could not use as they were, one sentence per kind; the
    labels and folders they name escaped by `shown` for where they go (terminal or Markdown)."""
    notes = []
    if card.get("config", {}).get("multi_label"):
        notes.append(
            f"Multi-label: {card.get('several_labels', 0):,} training articles have several labels; "
            "an article gets its best label and every other at or above that label's threshold."
        )
    if card.get("dropped"):
        notes.append(f"Dropped before training: {_counts(card['dropped'])}.")
    if card.get("repaired"):
        notes.append(f"Kept after a fix: {_counts(card['repaired'])}.")
    if card.get("flagged"):
        notes.append(f"Kept, worth a look: {_counts(card['flagged'])}.")
    if card.get("label_merges"):
        merged = ", ".join(
            f"{shown(repr(spelling))} → {shown(repr(label))}" for spelling, label in card["label_merges"].items()
        )
        notes.append(f"Label spellings merged: {merged}.")
    if card.get("empty_label_folders"):
        folders = ", ".join(map(shown, card["empty_label_folders"]))
        notes.append(f"Label folders without articles (no such label): {folders}.")
    return notes


def card_markdown(card: dict) -> str:
    """The model card as Markdown, for people: every label, outlet, path and note in it escaped
    (`markdown_text`), so rendered as Markdown or HTML it shows them and runs nothing."""
    lines = [f"# qism model: {markdown_text(str(card.get('name', '')))}", ""]
    lines.append(f"Created {card.get('created')} with qism {card.get('versions', {}).get('qism')}.")
    lines.append("")
    scores = card.get("scores")
    if scores:
        lines += [
            "## Held-out scores",
            "",
            f"- documents: {scores['documents']:,}",
            *(f"- {name}: {value}" for name, value in headline_scores(scores, lambda v: f"{_percent(v)}%")),
        ]
        if "expected_calibration_error" in scores:
            lines.append(f"- expected calibration error: {scores['expected_calibration_error']:.3f}")
        lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [
            f"| {markdown_text(label)} | {_percent(precision)} | {_percent(recall)} | {_percent(f1)} | {support} |"
            for label, precision, recall, f1, support in per_label_rows(scores)
        ]
        matrix = scores["confusion_matrix"]
        lines += [
            "",
            "Confusion matrix (rows: true label, columns: predicted):",
            "",
            "| | " + " | ".join(map(markdown_text, matrix["labels"])) + " |",
            "|---" * (len(matrix["labels"]) + 1) + "|",
        ]
        for label, row in zip(matrix["labels"], matrix["rows_true_columns_predicted"]):
            lines.append(f"| **{markdown_text(label)}** | " + " | ".join(str(v) for v in row) + " |")
        if "by_threshold" in scores:
            lines += [
                "",
                "Leaving articles scored below a threshold unlabeled (`qism predict --threshold`):",
                "",
                "| threshold | coverage | accuracy |",
                "|---|---|---|",
            ]
            lines += [
                f"| {row['threshold']:.3f} | {_percent(row['coverage'])}% | {_percent(row['accuracy'])}% |"
                for row in scores["by_threshold"]
            ]
        if "by_outlet" in scores:
            lines += [
                "",
                "Held-out scores per outlet (named by the record, or the file a document came from):",
                "",
                "| outlet | documents | accuracy | macro-F1 |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {markdown_text(outlet)} | {row['documents']:,} | {_percent(row['accuracy'])}% | "
                f"{_percent(row['macro_f1'])}% |"
                for outlet, row in scores["by_outlet"].items()
            ]
    else:
        lines.append("Trained on all documents (no held-out split), so there are no held-out scores.")
    if "unseen_outlets" in card:
        lines += [
            "",
            "## On outlets it never saw",
            "",
            "This recipe trained with one outlet or corpus left out at a time and scored on it "
            "(`python bench/unseen_outlets.py`): macro-F1 over the sections the left-out group has, "
            "F1 per section (with its documents).",
            "",
            unseen_outlets_table(card["unseen_outlets"]),
        ]
    if "short_input" in card:
        lines += [
            "",
            "## On titles and short items",
            "",
            "This recipe scored on titles alone, title + lead sentence and full articles (`python bench/short.py`): "
            "of its held-out split, and of each outlet or corpus left out (trained on the rest); macro-F1 over "
            "the sections present, ECE the expected calibration error. Groups without titles score articles only.",
            "",
            short_input_table(card["short_input"]),
        ]
    if "base" in card:
        lines += ["", "## Base model", "", "Fitted toward a base model's weights (`qism train --base`):", ""]
        lines += ["    " + line for line in base_summary(card["base"]).splitlines()]
    names = card.get("label_names", {})
    lines += ["", "## Labels", "", "| label | name | training documents |", "|---|---|---|"]
    lines += [
        f"| {markdown_text(label)} | {markdown_text(names.get(label, label))} | {count:,} |"
        for label, count in card.get("labels", {}).items()
    ]
    by_outlet = card.get("documents_by_outlet")
    if by_outlet and len(by_outlet) > 1:
        labels = list(card.get("labels", {}))
        lines += [
            "",
            "Documents per outlet (rows) and label (columns), before the held-out split:",
            "",
            "| outlet | " + " | ".join(map(markdown_text, labels)) + " |",
            "|---" * (len(labels) + 1) + "|",
        ]
        lines += [
            f"| {markdown_text(outlet)} | "
            + " | ".join(f"{row[label]:,}" if label in row else "–" for label in labels)
            + " |"
            for outlet, row in by_outlet.items()
        ]
    lines += ["", "## Training data", "", "| source | documents | SHA-256 |", "|---|---|---|"]
    lines += [
        f"| {markdown_text(s['path'])} | {s['documents']:,} | `{s['sha256'][:16]}…` |" for s in card.get("sources", [])
    ]
    lines += [line for note in data_notes(card, markdown_text) for line in ("", note)]
    if "autotune" in card:
        lines += [
            "",
            "## Autotune",
            "",
            autotune_summary(card["autotune"]),
            "",
            "| classifier | C | class weight | word n-grams | CV macro-F1 | seconds |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {t['config']['classifier']} | {t['config']['C']:g} | {t['config']['class_weight'] or 'none'} | "
            f"{'-'.join(map(str, t['config']['word_ngrams']))} | {t['cv_macro_f1']:.4f} | {t['seconds']} |"
            for t in card["autotune"]["trials"]
        ]
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {without_html(note)}" for note in card["notes"]]
    config = json.dumps(card.get("config", {}), ensure_ascii=False, indent=2)
    lines += ["", "## Configuration", "", f"{code_fence(config)}json", config, code_fence(config), ""]
    return "\n".join(lines)


def card_summary(card: dict, name: str) -> str:
    """`qism info`: the card in a few lines, then its held-out scores."""
    config = card.get("config", {})
    lines = [
        f"model     {printable(name)}",
        f"created   {card.get('created')} (qism {card.get('versions', {}).get('qism')})",
        "labels    " + ", ".join(f"{printable(label)} ({count:,})" for label, count in card.get("labels", {}).items()),
        "sources   " + ", ".join(f"{printable(s['path'])} ({s['documents']:,})" for s in card.get("sources", [])),
        f"config    {config.get('classifier')} C={config.get('C')} word n-grams "
        f"{','.join(map(str, config.get('word_ngrams') or ()))}"
        + (", multi-label (a threshold per label)" if config.get("multi_label") else ""),
    ]
    lines += [autotune_summary(card["autotune"])] if "autotune" in card else []
    lines += [base_summary(card["base"])] if "base" in card else []
    lines += ["", scores_text(card["scores"])] if card.get("scores") else []
    return "\n".join(lines)


def base_summary(base: dict) -> str:
    """What a model fitted toward a base (`qism train --base`) started from and chose."""
    sections = ", ".join(f"{label} {strength:g}" for label, strength in base.get("section_strengths", {}).items())
    lines = [
        f"base      {base.get('name') or '(unnamed)'} (card {str(base.get('card_sha256', ''))[:16]}); "
        f"sections inherited: {', '.join(base.get('sections_inherited', [])) or 'none'}; "
        f"new: {', '.join(base.get('sections_new', [])) or 'none'}",
        f"prior     {base.get('scale', 1):g} of the base's weights, strength {base.get('strength', 0):g} by "
        f"{base.get('folds')}-fold cross-validation"
        + (f" (per section: {sections})" if sections else "")
        + f", temperature {base.get('temperature', 1):g}",
    ]
    unlabeled = base.get("self_training")
    if unlabeled is not None:
        f1 = unlabeled.get("cv_macro_f1", {})
        lines.append(
            f"unlabeled {unlabeled.get('unlabeled', 0):,} articles: "
            + (
                f"{unlabeled.get('added', 0):,} confidently labeled ones used"
                if unlabeled.get("used")
                else "left unused (they did not help on the labeled articles)"
            )
            + (f"; cross-validated macro-F1 {f1['without']:.3f} without, {f1['with']:.3f} with" if f1 else "")
        )
    return "\n".join(lines)
