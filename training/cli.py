"""The `qism` command line: thin typer commands over the library, output for people or `--json`."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .card import autotune_summary, card_summary, comparison_text, data_notes, scores_text
from .config import CLASSIFIERS, DEFAULT, LabelOptions, ReadOptions, parse_duration, parse_ngram_range
from .corpus import FORMATS, read_inputs
from .errors import QismError
from .evaluation import evaluate_models
from .model import load_model
from .output import OUTPUT_FORMATS, label_to_output
from .progress import ProgressMeter, count_documents
from .report import require_picture_packages, write_report
from .trainer import train_and_save

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
Errors = Annotated[Optional[str], typer.Option("--errors", help="Undecodable bytes: 'strict' stops with the file and byte offset, 'replace' puts U+FFFD in their place and counts them [default: strict]")]
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
        if sys.stderr is None:  # started with stderr closed (2>&-): the work is still done, silently
            sys.stderr = open(os.devnull, "w")
        try:
            return command(*args, **kwargs)
        except QismError as err:
            typer.echo(f"qism: error: {_one_line(str(err))}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("qism: interrupted; nothing was written", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # the reader went away (| head): not an error
            _discard_stdout()
            raise typer.Exit(0) from None
        except OSError as err:  # a full disk, a folder that cannot be written: outputs stay as they were
            _discard_stdout()
            typer.echo(f"qism: error: {err}; nothing was written", err=True)
            raise typer.Exit(1) from None
        except MemoryError:
            typer.echo("qism: error: out of memory; give smaller inputs, use fewer --jobs, or free memory", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _discard_stdout() -> None:
    """Point stdout at /dev/null once writing to it failed, so that the flush at exit, with the
    same records still buffered, neither fails again nor prints a second message."""
    try:
        stdout = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # closed, or not a file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout)
    os.close(devnull)


def _print_json(data) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _given(**options) -> dict:
    """The options given on the command line (typer passes None for the others)."""
    return {name: value for name, value in options.items() if value is not None}


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


@app.command("train")
@_user_errors
def train_command(
    sources: Annotated[Optional[list[str]], typer.Argument(help="Labeled corpora: folders of <label>/*.txt, .zip, .csv/.tsv, .jsonl(.gz)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to save the model in")] = ...,
    recipe: Annotated[Optional[Path], typer.Option(help="A recipe (TOML/JSON) naming sources, label map and options; options given here override it")] = None,
    label_map: Annotated[Optional[Path], typer.Option(help="Rename/merge labels (TOML/JSON); labels it does not list are dropped")] = None,
    classifier: Annotated[Optional[str], typer.Option(help=f"One of: {', '.join(CLASSIFIERS)} [default: {DEFAULT.classifier}]")] = None,
    c: Annotated[Optional[float], typer.Option("--C", help=f"Inverse regularization strength [default: {DEFAULT.C}]")] = None,
    word_ngrams: Annotated[Optional[str], typer.Option(help="Word n-gram range LOW,HIGH [default: 1,2]")] = None,
    char_ngrams: Annotated[Optional[str], typer.Option(help="Char n-gram range LOW,HIGH, or 0 for none [default: 0]")] = None,
    min_df: Annotated[Optional[int], typer.Option(help=f"Keep terms found in at least this many documents [default: {DEFAULT.min_df}]")] = None,
    max_features: Annotated[Optional[int], typer.Option(help="Keep at most this many terms, most frequent first [default: all]")] = None,
    test_size: Annotated[Optional[float], typer.Option(help=f"Share held out for the card's scores; 0 trains on all [default: {DEFAULT.test_size}]")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"Seed of the split and the learners [default: {DEFAULT.seed}]")] = None,
    class_weight: Annotated[Optional[str], typer.Option(help="'balanced' weighs labels inversely to their frequency, 'none' does not [default: balanced]")] = None,
    nb_scaling: Annotated[Optional[float], typer.Option(help=f"Scale features by naive Bayes log-count ratios (NB-SVM) for linear_svc and sgd, with this smoothing; 0 turns it off [default: {DEFAULT.nb_scaling}]")] = None,
    class_scaling: Annotated[Optional[bool], typer.Option("--class-scaling/--no-class-scaling", help="Calibrate with a scale and bias per label besides the temperature [default: no]", show_default=False)] = None,
    boilerplate_min_docs: Annotated[Optional[int], typer.Option(help=f"Drop first/last sentences found in this many training articles (outlet notices); 0 keeps them [default: {DEFAULT.boilerplate_min_docs}]")] = None,
    balance_outlets: Annotated[Optional[bool], typer.Option("--balance-outlets/--no-balance-outlets", help="Give every outlet the same weight within each label [default: no]", show_default=False)] = None,
    lead_words: Annotated[Optional[int], typer.Option(help=f"Also count the word n-grams of each article's first N words as lead terms; 0 turns it off [default: {DEFAULT.lead_words}]")] = None,
    outlet_label_sets: Annotated[Optional[bool], typer.Option("--outlet-label-sets/--no-outlet-label-sets", help="Count an outlet's articles against a label only if that outlet uses the label (corpora mixing outlets with different sections) [default: no]", show_default=False)] = None,
    autotune: Annotated[Optional[str], typer.Option(metavar="DURATION", help="Choose classifier, C, class weight and word n-grams by cross-validation on the training split within this time (90s, 5m, 1h, or seconds), starting from the options given")] = None,
    teh_marbuta: Annotated[Optional[bool], typer.Option("--teh-marbuta/--no-teh-marbuta", help="Normalize ة to ه [default: yes]", show_default=False)] = None,
    dedupe: Annotated[Optional[bool], typer.Option("--dedupe/--no-dedupe", help="Drop duplicate texts and texts found under two labels [default: yes]", show_default=False)] = None,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    encoding: Encoding = None,
    errors: Errors = None,
    jobs: Jobs = -1,
    as_json: AsJson = False,
):
    """Train a classifier on labeled sources (or a recipe) and save it with its card."""
    options = _given(classifier=classifier, C=c, min_df=min_df, max_features=max_features, test_size=test_size,
                     seed=seed, nb_scaling=nb_scaling, class_scaling=class_scaling, lead_words=lead_words,
                     boilerplate_min_docs=boilerplate_min_docs, balance_outlets=balance_outlets,
                     outlet_label_sets=outlet_label_sets, dedupe=dedupe,
                     word_ngrams=word_ngrams and parse_ngram_range(word_ngrams, "--word-ngrams"))
    if class_weight is not None:
        options["class_weight"] = None if class_weight.lower() == "none" else class_weight
    if char_ngrams is not None:  # "0" turns char n-grams off, even when a recipe turns them on
        options["char_ngrams"] = parse_ngram_range(char_ngrams, "--char-ngrams")
    if teh_marbuta is not None:
        options["cleaning"] = {"teh_marbuta": teh_marbuta}
    read = _given(text_column=text_column, label_column=label_column, encoding=encoding, errors=errors)
    with stderr.status("training") as status:
        model = train_and_save(out, sources or [], recipe=recipe, label_map=label_map, train_options=options,
                               read_options=read, n_jobs=jobs, autotune=autotune and parse_duration(autotune),
                               report=status.update)
    _print_json(model.card) if as_json else typer.echo(_training_summary(out, model.card))


def _training_summary(out: Path, card: dict) -> str:
    lines = [f"saved {out} ({len(card['labels'])} labels, {card['split']['train']:,} training documents, "
             f"{card['training_seconds']:.1f} s)"]
    lines += [autotune_summary(card["autotune"])] if "autotune" in card else []
    lines += data_notes(card)
    lines += [scores_text(card["scores"])] if card["scores"] else []
    return "\n".join(lines)


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
    errors: Errors = None,
    jobs: Jobs = -1,
    as_json: AsJson = False,
):
    """Score a model on labeled data: accuracy, macro-F1 (over the labels the data has), per-label
    scores, confusion matrix, calibration, and accuracy against coverage by --threshold."""
    if report is not None:
        require_picture_packages()  # before the slow part
    loaded, other = load_model(model), (load_model(against) if against is not None else None)
    for each in (loaded, other):
        each and each.set_jobs(jobs)
    options = ReadOptions(**_given(text_column=text_column, label_column=label_column, encoding=encoding, errors=errors))
    result, comparison = evaluate_models(loaded, sources, options, other, names=[str(model), str(against)])
    if report is not None:
        page = write_report(report, loaded, result, title=f"qism evaluation: {model.name} on {', '.join(sources)}")
        typer.echo(f"report: {page}", err=True)
    shown = comparison if comparison is not None else result.scores
    _print_json(shown) if as_json else typer.echo(comparison_text(shown) if comparison is not None else scores_text(shown))


@app.command("predict", context_settings={"ignore_unknown_options": True})
@_user_errors
def predict_command(
    texts: Annotated[Optional[list[str]], typer.Argument(help="Articles to label ('-' reads standard input; '--' ends the options, for an article that starts with '-')")] = None,
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
    errors: Errors = None,
    jobs: Jobs = -1,
):
    """Label articles given as arguments, in a file or folder, or on standard input."""
    if output is None and sys.stdout is None:  # started with >&-
        raise QismError("standard output is closed; write the records to a file with --output")
    options = LabelOptions(top_k=top_k, threshold=threshold, unknown_label=unknown_label, explain=explain)
    read = ReadOptions(require_labels=False, **_given(text_column=text_column, encoding=encoding, errors=errors))
    documents = read_inputs(texts or [], input_path, input_format, lines, read)
    total = len(texts) if texts and texts != ["-"] else count_documents(input_path, "lines" if lines else input_format) if input_path and not quiet else None
    meter = ProgressMeter(total)
    counts = label_to_output(load_model(model), documents, options, fmt=output_format, output=output, resume=resume,
                             bom=bom, n_jobs=jobs, on_batch=(lambda n: None) if quiet else _progress(meter))
    if not quiet:
        _progress_done(meter)
    if counts["replaced_characters"]:
        typer.echo(f"qism: note: {counts['replaced_characters']:,} undecodable characters were replaced by U+FFFD", err=True)


@app.command("info")
@_user_errors
def info_command(
    model: Annotated[Optional[Path], typer.Argument(help="Model folder [default: the shipped default model]")] = None,
    as_json: AsJson = False,
):
    """Show a model's card: labels, training data, configuration and held-out scores."""
    card = load_model(model).card
    _print_json(card) if as_json else typer.echo(card_summary(card, str(model or "the default model")))
