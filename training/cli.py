"""The `qism` command line: thin typer commands over the library, output for people or `--json`."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .corpus import FORMATS, Document, ReadOptions, read_sources
from .errors import QismError
from .evaluation import evaluate
from .model import load_model
from .recipe import LabelMap, load_recipe
from .predict import OUTPUT_FORMATS, atomic_output, batch_size_for, label_documents, write_records
from .trainer import CLASSIFIERS, TrainConfig, train

app = typer.Typer(
    help="Train topic classifiers for Arabic news and label articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
stderr = Console(stderr=True, highlight=False)

TextColumn = Annotated[Optional[str], typer.Option(help="Column (CSV) or key (JSONL) holding the text [default: text, content, body]")]
LabelColumn = Annotated[Optional[str], typer.Option(help="Column (CSV) or key (JSONL) holding the label [default: label, class, category]")]
Encoding = Annotated[Optional[str], typer.Option(help="Encoding of the input files [default: detected: UTF-8, UTF-16 with BOM, or Windows-1256]")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Processes for featurizing; -1 uses every core")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON for programs")]


def _user_errors(command):
    """Turn user mistakes into one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except QismError as err:
            typer.echo(f"qism: error: {err}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("qism: interrupted; nothing was written", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(0) from None

    return wrapper


def _ngrams(value: str | None, option: str) -> tuple[int, int] | None:
    if value is None or value.lower() in ("", "none", "0"):
        return None
    try:
        low, _, high = value.partition(",")
        ngrams = (int(low), int(high or low))
    except ValueError:
        raise QismError(f"{option} takes LOW,HIGH such as 1,2; got {value!r}") from None
    if not 1 <= ngrams[0] <= ngrams[1]:
        raise QismError(f"{option} takes 1 <= LOW <= HIGH; got {value!r}")
    return ngrams


def _print_json(data) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _scores_text(scores: dict) -> str:
    lines = [f"documents  {scores['documents']:,}",
             f"accuracy   {scores['accuracy']:.4f}",
             f"macro-F1   {scores['macro_f1']:.4f}"]
    if "expected_calibration_error" in scores:
        lines.append(f"ECE        {scores['expected_calibration_error']:.4f}")
    width = max(len(label) for label in scores["per_label"]) + 2
    lines += ["", f"{'label':<{width}}precision  recall  F1      support"]
    for label, row in scores["per_label"].items():
        lines.append(f"{label:<{width}}{row['precision']:<11.3f}{row['recall']:<8.3f}{row['f1']:<8.3f}{row['support']}")
    matrix = scores["confusion_matrix"]
    lines += ["", "confusion matrix (rows: true, columns: predicted, in the order above)"]
    lines += [" ".join(f"{value:>6}" for value in row) for row in matrix["rows_true_columns_predicted"]]
    return "\n".join(lines)


_DEFAULTS = TrainConfig()


@app.command("train")
@_user_errors
def train_command(
    sources: Annotated[Optional[list[str]], typer.Argument(help="Labeled corpora: folders of <label>/*.txt, .zip, .csv/.tsv, .jsonl(.gz)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to save the model in")] = ...,
    recipe: Annotated[Optional[Path], typer.Option(help="A recipe (TOML/JSON) naming sources, label map and options; options given here override it")] = None,
    label_map: Annotated[Optional[Path], typer.Option(help="Rename/merge labels (TOML/JSON); labels it does not list are dropped")] = None,
    classifier: Annotated[Optional[str], typer.Option(help=f"One of: {', '.join(CLASSIFIERS)} [default: {_DEFAULTS.classifier}]")] = None,
    c: Annotated[Optional[float], typer.Option("--C", help=f"Inverse regularization strength [default: {_DEFAULTS.C}]")] = None,
    word_ngrams: Annotated[Optional[str], typer.Option(help=f"Word n-gram range LOW,HIGH [default: {_DEFAULTS.word_ngrams}]")] = None,
    char_ngrams: Annotated[Optional[str], typer.Option(help=f"Char n-gram range LOW,HIGH, or 0 for none [default: {_DEFAULTS.char_ngrams}]")] = None,
    min_df: Annotated[Optional[int], typer.Option(help=f"Keep terms found in at least this many documents [default: {_DEFAULTS.min_df}]")] = None,
    max_features: Annotated[Optional[int], typer.Option(help=f"Keep at most this many terms, most frequent first [default: {_DEFAULTS.max_features}]")] = None,
    test_size: Annotated[Optional[float], typer.Option(help=f"Share held out for the card's scores; 0 trains on all [default: {_DEFAULTS.test_size}]")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"Seed of the split and the learners [default: {_DEFAULTS.seed}]")] = None,
    teh_marbuta: Annotated[bool, typer.Option(help="Normalize ة to ه")] = True,
    dedupe: Annotated[bool, typer.Option(help="Drop duplicate texts and texts found under two labels")] = True,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    encoding: Encoding = None,
    jobs: Jobs = -1,
    as_json: AsJson = False,
):
    """Train a classifier on labeled sources (or a recipe) and save it with its card."""
    plan = load_recipe(recipe) if recipe else None
    if plan and sources:
        raise QismError("give the sources in the recipe or on the command line, not both")
    overrides = {
        key: value for key, value in {
            "classifier": classifier, "C": c, "word_ngrams": _ngrams(word_ngrams, "--word-ngrams"),
            "min_df": min_df, "max_features": max_features, "test_size": test_size, "seed": seed,
        }.items() if value is not None
    }
    if char_ngrams is not None:  # "0" turns char n-grams off, even when a recipe turns them on
        overrides["char_ngrams"] = _ngrams(char_ngrams, "--char-ngrams")
    if not teh_marbuta:
        overrides["cleaning"] = {**(plan.options.get("cleaning", {}) if plan else {}), "teh_marbuta": False}
    if not dedupe:
        overrides["dedupe"] = False
    config = TrainConfig(**{**(plan.options if plan else {}), **overrides})
    options = ReadOptions(text_column=text_column, label_column=label_column, encoding=encoding)
    if plan:
        options = plan.read_options if options == ReadOptions() else options
    mapping = LabelMap.load(label_map) if label_map else plan.label_map if plan else None
    with stderr.status("training") as status:
        model = train(plan.sources if plan else sources or [], config, read_options=options, label_map=mapping,
                      n_jobs=jobs, name=out.name, report=lambda message: status.update(message))
        status.update(f"saving to {out}")
        model.save(out)
    if as_json:
        _print_json(model.card)
        return
    card = model.card
    typer.echo(f"saved {out} ({len(card['labels'])} labels, {card['split']['train']:,} training documents, "
               f"{card['training_seconds']:.1f} s)")
    if card["dropped"]:
        typer.echo("dropped: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in card["dropped"].items()))
    if card["scores"]:
        typer.echo(_scores_text(card["scores"]))


@app.command("evaluate")
@_user_errors
def evaluate_command(
    model: Annotated[Path, typer.Argument(help="Model folder")],
    sources: Annotated[list[str], typer.Argument(help="Labeled corpora to score the model on")],
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    encoding: Encoding = None,
    jobs: Jobs = -1,
    as_json: AsJson = False,
):
    """Score a model on labeled data: accuracy, macro-F1, per-label scores, confusion matrix."""
    loaded = load_model(model)
    loaded.set_jobs(jobs)
    scores = evaluate(loaded, sources, ReadOptions(text_column=text_column, label_column=label_column, encoding=encoding))
    if as_json:
        _print_json(scores)
    else:
        typer.echo(_scores_text(scores))
        if scores["labels_unknown_to_model"]:
            typer.echo("labels the model does not know: " + ", ".join(scores["labels_unknown_to_model"]))


@app.command("predict")
@_user_errors
def predict_command(
    texts: Annotated[Optional[list[str]], typer.Argument(help="Articles to label; '-' reads standard input")] = None,
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder")] = Path("models/default"),
    input_path: Annotated[Optional[str], typer.Option("--input", "-i", help="A file or folder of articles (any supported format; labels not needed)")] = None,
    input_format: Annotated[Optional[str], typer.Option("--input-format", help=f"Format of --input when its name does not say: {', '.join(FORMATS)}")] = None,
    lines: Annotated[bool, typer.Option("--lines", help="One article per line (standard input or a .txt file)")] = False,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many labels to give per article, best first")] = 1,
    output_format: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(OUTPUT_FORMATS)}")] = "table",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write results to this file (atomically) instead of stdout")] = None,
    text_column: TextColumn = None,
    encoding: Encoding = None,
    jobs: Jobs = -1,
):
    """Label articles given as arguments, in a file or folder, or on standard input."""
    if output_format not in OUTPUT_FORMATS:
        raise QismError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}; got {output_format!r}")
    if top_k < 1:
        raise QismError("--top-k must be at least 1")
    loaded = load_model(model)
    loaded.set_jobs(jobs)
    options = ReadOptions(text_column=text_column, encoding=encoding, require_labels=False)
    fmt = "lines" if lines else input_format
    if input_path is not None:
        documents = read_sources([input_path], options, fmt)
    elif texts == ["-"]:
        documents = read_sources(["-"], options, "lines" if lines else None)
    elif texts:
        documents = (Document(text=text) for text in texts)
    else:
        raise QismError("give articles as arguments, --input PATH, or '-' to read standard input")
    records = label_documents(loaded, documents, top_k=top_k, batch_size=batch_size_for(jobs))
    with atomic_output(output, newline="" if output_format == "csv" else None) as out:
        write_records(records, output_format, out)


@app.command("info")
@_user_errors
def info_command(
    model: Annotated[Path, typer.Argument(help="Model folder")],
    as_json: AsJson = False,
):
    """Show a model's card: labels, training data, configuration and held-out scores."""
    card = load_model(model).card
    if as_json:
        _print_json(card)
        return
    typer.echo(f"model     {model}")
    typer.echo(f"created   {card.get('created')} (qism {card.get('versions', {}).get('qism')})")
    typer.echo("labels    " + ", ".join(f"{label} ({count:,})" for label, count in card.get("labels", {}).items()))
    typer.echo("sources   " + ", ".join(f"{s['path']} ({s['documents']:,})" for s in card.get("sources", [])))
    config = card.get("config", {})
    typer.echo(f"config    {config.get('classifier')} C={config.get('C')} word n-grams {config.get('word_ngrams')}")
    if card.get("scores"):
        typer.echo("")
        typer.echo(_scores_text(card["scores"]))
