"""The `qism` command line: thin typer commands over the library, output for people or `--json`."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .autotune import parse_duration, summary as autotune_summary
from .corpus import FORMATS, Document, ReadOptions, read_sources, replace_lone_surrogates
from .errors import QismError
from .evaluation import compare, evaluate_documents, read_labeled
from .model import data_notes, load_model
from .recipe import LabelMap, load_recipe
from .predict import OUTPUT_FORMATS, RESUMABLE_FORMATS, batch_size_for, label_documents, output_for, skip_done, write_records
from .progress import ProgressMeter, count_documents
from .report import require_picture_packages, write_report
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
Errors = Annotated[str, typer.Option("--errors", help="Undecodable bytes: 'strict' stops with the file and byte offset, 'replace' puts U+FFFD in their place and counts them")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Processes for featurizing; -1 uses every core")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON for programs")]


_LINE_BREAK_RE = re.compile("[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _one_line(message: str) -> str:
    """A message that quotes the user's data (a CSV header, a file name) still takes one line."""
    return _LINE_BREAK_RE.sub(lambda match: repr(match.group())[1:-1], message)


def _user_errors(command):
    """Turn user mistakes into one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except QismError as err:
            typer.echo(f"qism: error: {_one_line(str(err))}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("qism: interrupted; nothing was written", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(0) from None
        except OSError as err:  # a full disk, a folder that cannot be written: outputs stay as they were
            typer.echo(f"qism: error: {err}; nothing was written", err=True)
            raise typer.Exit(1) from None

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
    if "by_threshold" in scores:
        lines += ["", "threshold  coverage  accuracy   (predict --threshold: below it, the label is unknown)"]
        lines += [f"{row['threshold']:<11.3f}{row['coverage']:<10.1%}{row['accuracy']:.1%}" for row in scores["by_threshold"]]
    return "\n".join(lines)


def _comparison_text(comparison: dict) -> str:
    first, second = comparison["models"]
    width = max(len(first), len(second), 10) + 2
    label_width = max([len(label) for label in comparison["per_label_f1"]] + [6]) + 5

    def line(name: str, row: dict) -> str:
        a, b = (f"{v:.4f}" if v is not None else "-" for v in row["values"])
        difference = f"{row['difference']:+.4f}" if row["difference"] is not None else "-"
        return f"{name:<{label_width}}{a:<{width}}{b:<{width}}{difference}"

    lines = [f"documents {comparison['documents']:,}", "",
             f"{'':<{label_width}}{first:<{width}}{second:<{width}}difference"]
    names = {"accuracy": "accuracy", "macro_f1": "macro-F1", "expected_calibration_error": "ECE",
             "accuracy_at_coverage_90": "acc@90% cov"}
    lines += [line(names[key], row) for key, row in comparison["metrics"].items()]
    lines += [line(f"F1 {label}", row) for label, row in comparison["per_label_f1"].items()]
    return "\n".join(lines)


def _progress(meter: ProgressMeter) -> Callable[[int], None]:
    """Show the meter on stderr after each batch: redrawn in place in a terminal, a line each otherwise."""
    terminal = sys.stderr.isatty()

    def on_batch(n: int) -> None:
        line = meter.update(n)
        if line:
            sys.stderr.write(f"\r{line}\x1b[K" if terminal else f"{line}\n")
            sys.stderr.flush()

    return on_batch


def _progress_done(meter: ProgressMeter) -> None:
    summary = meter.summary()
    if summary:
        sys.stderr.write(f"\r{summary}\x1b[K\n" if sys.stderr.isatty() else f"{summary}\n")


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
    class_weight: Annotated[Optional[str], typer.Option(help=f"'balanced' weighs labels inversely to their frequency, 'none' does not [default: {_DEFAULTS.class_weight}]")] = None,
    nb_scaling: Annotated[Optional[float], typer.Option(help=f"Scale features by naive Bayes log-count ratios (NB-SVM) for linear_svc and sgd, with this smoothing; 0 turns it off [default: {_DEFAULTS.nb_scaling}]")] = None,
    class_scaling: Annotated[Optional[bool], typer.Option("--class-scaling/--no-class-scaling", help=f"Calibrate with a scale and bias per label besides the temperature [default: {_DEFAULTS.class_scaling}]", show_default=False)] = None,
    boilerplate_min_docs: Annotated[Optional[int], typer.Option(help=f"Drop first/last sentences found in this many training articles (outlet notices); 0 keeps them [default: {_DEFAULTS.boilerplate_min_docs}]")] = None,
    balance_sources: Annotated[Optional[bool], typer.Option("--balance-sources/--no-balance-sources", help=f"Give every source the same weight within each label [default: {_DEFAULTS.balance_sources}]", show_default=False)] = None,
    lead_words: Annotated[Optional[int], typer.Option(help=f"Also count the word n-grams of each article's first N words as lead terms; 0 turns it off [default: {_DEFAULTS.lead_words}]")] = None,
    source_label_sets: Annotated[Optional[bool], typer.Option("--source-label-sets/--no-source-label-sets", help=f"Count a source's articles against a label only if that source uses the label (corpora mixing outlets with different sections) [default: {_DEFAULTS.source_label_sets}]", show_default=False)] = None,
    autotune: Annotated[Optional[str], typer.Option(metavar="DURATION", help="Choose classifier, C, class weight and word n-grams by cross-validation on the training split within this time (90s, 5m, 1h, or seconds), starting from the options given")] = None,
    teh_marbuta: Annotated[bool, typer.Option(help="Normalize ة to ه")] = True,
    dedupe: Annotated[bool, typer.Option(help="Drop duplicate texts and texts found under two labels")] = True,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    encoding: Encoding = None,
    errors: Errors = "strict",
    jobs: Jobs = -1,
    as_json: AsJson = False,
):
    """Train a classifier on labeled sources (or a recipe) and save it with its card."""
    budget_seconds = parse_duration(autotune) if autotune is not None else None
    plan = load_recipe(recipe) if recipe else None
    if plan and sources:
        raise QismError("give the sources in the recipe or on the command line, not both")
    overrides = {
        key: value for key, value in {
            "classifier": classifier, "C": c, "word_ngrams": _ngrams(word_ngrams, "--word-ngrams"),
            "min_df": min_df, "max_features": max_features, "test_size": test_size, "seed": seed,
            "boilerplate_min_docs": boilerplate_min_docs, "balance_sources": balance_sources,
            "nb_scaling": nb_scaling, "class_scaling": class_scaling, "source_label_sets": source_label_sets, "lead_words": lead_words,
        }.items() if value is not None
    }
    if class_weight is not None:
        overrides["class_weight"] = None if class_weight.lower() == "none" else class_weight
    if char_ngrams is not None:  # "0" turns char n-grams off, even when a recipe turns them on
        overrides["char_ngrams"] = _ngrams(char_ngrams, "--char-ngrams")
    if not teh_marbuta:
        overrides["cleaning"] = {**(plan.options.get("cleaning", {}) if plan else {}), "teh_marbuta": False}
    if not dedupe:
        overrides["dedupe"] = False
    config = TrainConfig(**{**(plan.options if plan else {}), **overrides})
    options = ReadOptions(text_column=text_column, label_column=label_column, encoding=encoding, errors=errors)
    per_source = {}
    if plan and options == ReadOptions():  # read options given here replace all of the recipe's
        options, per_source = plan.read_options, plan.source_options
    mapping = LabelMap.load(label_map) if label_map else plan.label_map if plan else None
    with stderr.status("training") as status:
        model = train(plan.sources if plan else sources or [], config, read_options=options,
                      source_options=per_source, label_map=mapping,
                      n_jobs=jobs, name=out.name, autotune=budget_seconds, report=lambda message: status.update(message))
        if plan and plan.notes:
            model.card["notes"] = plan.notes
        status.update(f"saving to {out}")
        model.save(out)
    if as_json:
        _print_json(model.card)
        return
    card = model.card
    typer.echo(f"saved {out} ({len(card['labels'])} labels, {card['split']['train']:,} training documents, "
               f"{card['training_seconds']:.1f} s)")
    if "autotune" in card:
        typer.echo(autotune_summary(card["autotune"]))
    for note in data_notes(card):
        typer.echo(note)
    if card["scores"]:
        typer.echo(_scores_text(card["scores"]))


@app.command("evaluate")
@_user_errors
def evaluate_command(
    model: Annotated[Path, typer.Argument(help="Model folder")],
    sources: Annotated[list[str], typer.Argument(help="Labeled corpora to score the model on")],
    report: Annotated[Optional[Path], typer.Option(help="Write report.html (self-contained), confusion_matrix.png and per_label.csv into this folder")] = None,
    against: Annotated[Optional[Path], typer.Option(help="A second model folder to compare with, side by side on the same documents")] = None,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    encoding: Encoding = None,
    errors: Errors = "strict",
    jobs: Jobs = -1,
    as_json: AsJson = False,
):
    """Score a model on labeled data: accuracy, macro-F1, per-label scores, confusion matrix, calibration,
    and accuracy against coverage by --threshold."""
    if report is not None:
        require_picture_packages()  # before the slow part
    loaded = load_model(model)
    loaded.set_jobs(jobs)
    other = load_model(against) if against is not None else None
    documents = read_labeled(sources, ReadOptions(text_column=text_column, label_column=label_column, encoding=encoding,
                                                  errors=errors))
    result = evaluate_documents(loaded, documents)
    if report is not None:
        page = write_report(report, loaded, result, title=f"qism evaluation: {model.name} on {', '.join(sources)}")
        typer.echo(f"report: {page}", err=True)
    if other is not None:
        other.set_jobs(jobs)
        comparison = compare(result.scores, evaluate_documents(other, documents).scores, [str(model), str(against)])
        if as_json:
            _print_json(comparison)
        else:
            typer.echo(_comparison_text(comparison))
        return
    scores = result.scores
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
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model folder [default: the shipped default model]")] = None,
    input_path: Annotated[Optional[str], typer.Option("--input", "-i", help="A file or folder of articles (any supported format; labels not needed)")] = None,
    input_format: Annotated[Optional[str], typer.Option("--input-format", help=f"Format of --input when its name does not say: {', '.join(FORMATS)}")] = None,
    lines: Annotated[bool, typer.Option("--lines", help="One article per line (standard input or a .txt file)")] = False,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many labels to give per article, best first")] = 1,
    output_format: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(OUTPUT_FORMATS)}")] = "table",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write results to this file (atomically) instead of stdout")] = None,
    threshold: Annotated[float, typer.Option(help="Below this best probability the label is --unknown-label (see `qism evaluate` for coverage and accuracy)")] = 0.0,
    unknown_label: Annotated[str, typer.Option(help="The label of articles below --threshold, or without text")] = "unknown",
    explain: Annotated[int, typer.Option(help="Show the N terms that pushed each article most towards its label")] = 0,
    bom: Annotated[bool, typer.Option("--bom", help="Start CSV output with a UTF-8 byte order mark, so Excel reads the Arabic")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an --output (jsonl, csv) that an interrupted run left, without labeling its records again")] = False,
    text_column: TextColumn = None,
    encoding: Encoding = None,
    errors: Errors = "strict",
    jobs: Jobs = -1,
):
    """Label articles given as arguments, in a file or folder, or on standard input."""
    if output_format not in OUTPUT_FORMATS:
        raise QismError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}; got {output_format!r}")
    if top_k < 1:
        raise QismError("--top-k must be at least 1")
    if not 0 <= threshold <= 1:
        raise QismError(f"--threshold is a probability between 0 and 1; got {threshold}")
    if explain < 0:
        raise QismError("--explain takes a number of terms, 0 or more")
    if bom and output_format != "csv":
        raise QismError("--bom is for --format csv")
    if resume and (output is None or output_format not in RESUMABLE_FORMATS):
        raise QismError(f"--resume continues an --output file in --format {' or '.join(RESUMABLE_FORMATS)}")
    loaded = load_model(model)
    loaded.set_jobs(jobs)
    if not unknown_label.strip() or unknown_label in loaded.labels:
        raise QismError(f"--unknown-label must be a name the model does not use as a label; got {unknown_label!r}")
    options = ReadOptions(text_column=text_column, encoding=encoding, require_labels=False, errors=errors)
    fmt = "lines" if lines else input_format
    if input_path is not None:
        documents = read_sources([input_path], options, fmt)
    elif texts == ["-"]:
        documents = read_sources(["-"], options, "lines" if lines else None)
    elif texts:
        named = next((text for text in texts if _names_a_path(text)), None)
        if named is not None:
            raise QismError(f"{named!r} is a file or folder, not an article; to label what it holds, use --input {named}")
        documents = (Document(text=replace_lone_surrogates(text)) for text in texts)
    else:
        raise QismError("give articles as arguments, --input PATH, or '-' to read standard input")
    total = len(texts) if texts and texts != ["-"] else None
    if input_path is not None and not quiet:
        total = count_documents(input_path, fmt)
    meter = ProgressMeter(total)
    replaced = Counter()
    with output_for(output, output_format, resume, newline="" if output_format == "csv" else None) as target:
        records = label_documents(loaded, _counting_replaced(skip_done(documents, target), replaced),
                                  top_k=top_k, batch_size=batch_size_for(jobs),
                                  on_batch=(lambda n: None) if quiet else _progress(meter),
                                  threshold=threshold, unknown_label=unknown_label, explain_terms=explain)
        write_records(records, output_format, target.out, bom=bom, header=not target.has_header)
    if not quiet:
        _progress_done(meter)
    if errors == "replace" and replaced["characters"]:
        typer.echo(f"qism: note: {replaced['characters']:,} undecodable characters were replaced by U+FFFD", err=True)


def _names_a_path(text: str) -> bool:
    """Whether an article argument is really the name of an existing file or folder (no article is
    one word that is also a path)."""
    if len(text) > 1024 or "\0" in text or any(char.isspace() for char in text):
        return False
    try:
        return Path(text).exists()
    except OSError:
        return False


def _counting_replaced(documents: Iterable[Document], replaced: Counter) -> Iterator[Document]:
    """Pass documents on, counting the U+FFFD characters in their text (what --errors replace put there)."""
    for doc in documents:
        replaced["characters"] += doc.text.count("\ufffd")
        yield doc


@app.command("info")
@_user_errors
def info_command(
    model: Annotated[Optional[Path], typer.Argument(help="Model folder [default: the shipped default model]")] = None,
    as_json: AsJson = False,
):
    """Show a model's card: labels, training data, configuration and held-out scores."""
    card = load_model(model).card
    if as_json:
        _print_json(card)
        return
    typer.echo(f"model     {model or 'the default model'}")
    typer.echo(f"created   {card.get('created')} (qism {card.get('versions', {}).get('qism')})")
    typer.echo("labels    " + ", ".join(f"{label} ({count:,})" for label, count in card.get("labels", {}).items()))
    typer.echo("sources   " + ", ".join(f"{s['path']} ({s['documents']:,})" for s in card.get("sources", [])))
    config = card.get("config", {})
    typer.echo(f"config    {config.get('classifier')} C={config.get('C')} word n-grams {config.get('word_ngrams')}")
    if "autotune" in card:
        typer.echo(autotune_summary(card["autotune"]))
    if card.get("scores"):
        typer.echo("")
        typer.echo(_scores_text(card["scores"]))
