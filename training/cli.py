"""The `qism` command line: thin typer commands over the library, output for people or `--json`.

The commands import the heavy parts of the library (scikit-learn, NumPy) when they run, so that
`qism --help` and `qism --version` answer at once.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from .card import autotune_summary, card_summary, comparison_text, data_notes, qism_version, scores_text
from .config import (
    CLASSIFIERS,
    CLUSTER_TIMEOUT,
    DEFAULT,
    OUTPUT_FORMATS,
    REPORT_LANGUAGES,
    LabelOptions,
    ReadOptions,
    check_cluster_timeout,
    check_engine,
    check_port,
    check_report_language,
    parse_columns,
    parse_duration,
)
from .corpus import FORMATS, ID_COLUMNS, LABEL_COLUMNS, TEXT_COLUMNS, read_inputs
from .errors import QismError, printable, printable_json
from .progress import ProgressMeter, count_documents


def _when_called(module: str, name: str) -> Callable:
    """The library function `name` of `module`, imported when first called: scikit-learn and NumPy
    load only for a command that uses them."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(f".{module}", __package__), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


evaluate_models = _when_called("evaluation", "evaluate_models")
load_model = _when_called("model", "load_model")
label_to_output = _when_called("output", "label_to_output")
require_picture_packages = _when_called("report", "require_picture_packages")
write_report = _when_called("report", "write_report")
train_and_save = _when_called("trainer", "train_and_save")
train_from_base_and_save = _when_called("adapt", "train_from_base_and_save")
relabeled = _when_called("predict", "relabeled")
select_to_file = _when_called("select", "select_to_file")
label_files_on_cluster = _when_called("cluster", "label_files_on_cluster")
train_and_save_on_cluster = _when_called("cluster", "train_and_save_on_cluster")


def _status(text: str):
    """A spinner on stderr while a long step runs."""
    from rich.console import Console

    return Console(stderr=True, highlight=False).status(text)


app = typer.Typer(
    help="Train topic classifiers for Arabic news and label articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(asked: bool) -> None:
    if asked:
        typer.echo(f"qism {qism_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show qism's version and exit")
    ] = False,
):
    """Train topic classifiers for Arabic news and label articles."""


def _candidates(names: tuple[str, ...]) -> str:
    return f"the first there of {', '.join(names[:-1])} or {names[-1]}"


def _range(ngrams: tuple[int, int] | None) -> str:
    return ",".join(map(str, ngrams)) if ngrams else "0"


def _switch(name: str, on: bool) -> str:
    return f"[default: --{'' if on else 'no-'}{name}]"


Scheduler = Annotated[
    str | None,
    typer.Option(
        help="With --engine dask: the scheduler's address (tcp://HOST:PORT) or scheduler file [default: "
        "a local cluster]"
    ),
]
ClusterTimeout = Annotated[
    float,
    typer.Option(
        metavar="SECONDS",
        help="With --engine dask: the longest wait for the scheduler to answer, a worker to join, or a "
        "worker while none is left, before stopping with one line",
    ),
]
TextColumn = Annotated[
    str | None,
    typer.Option(help=f"Column (CSV) or key (JSONL) holding the text [default: {_candidates(TEXT_COLUMNS)}]"),
]
LabelColumn = Annotated[
    str | None,
    typer.Option(help=f"Column (CSV) or key (JSONL) holding the label [default: {_candidates(LABEL_COLUMNS)}]"),
]
Encoding = Annotated[
    str | None,
    typer.Option(help="Encoding of the input files [default: detected: UTF-8, UTF-16 with BOM, or Windows-1256]"),
]
Errors = Annotated[
    str | None,
    typer.Option(
        "--errors",
        help="Undecodable bytes: 'strict' stops with the file and byte offset, 'replace' puts U+FFFD in "
        "their place and counts them [default: strict]",
    ),
]
InputFormat = Annotated[
    str | None,
    typer.Option(
        "--input-format",
        metavar="FORMAT",
        help=f"Format of the sources when their names do not say: {', '.join(FORMATS)} [default: detected]",
    ),
]
LabelSeparator = Annotated[
    str | None,
    typer.Option(metavar="TEXT", help="What separates the labels of a CSV or TSV cell that holds several [default: |]"),
]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Processes for featurizing; -1 uses every core")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON for programs")]
SectionMap = Annotated[
    Path | None,
    typer.Option(
        "--label-map",
        metavar="FILE",
        help="Your sections (TOML/JSON, as for training), each taking the model's labels (ids or display "
        "names) it merges; the model's labels it does not list stay as they are",
    ),
]


def _user_errors(command):
    """Turn user mistakes into one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        if sys.stderr is None:  # started with stderr closed (2>&-): the work is still done, silently
            sys.stderr = open(os.devnull, "w")
        try:
            return command(*args, **kwargs)
        except QismError as err:
            typer.echo(f"qism: error: {printable(str(err))}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt as err:  # an `Interrupted` says what was kept
            typer.echo(f"qism: interrupted; {str(err) or 'nothing was written'}", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # the reader went away (| head): not an error
            _discard_stdout()
            raise typer.Exit(0) from None
        except OSError as err:  # a full disk, a folder that cannot be written: outputs stay as they were
            _discard_stdout()
            typer.echo(f"qism: error: {printable(str(err))}; nothing was written", err=True)
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
    typer.echo(printable_json(json.dumps(data, ensure_ascii=False, indent=2)))


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


@app.command("train", short_help="Train a classifier on labeled sources and save it with its card.")
@_user_errors
def train_command(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SOURCE", help="Labeled corpora: folders of <label>/*.txt, .zip, .csv/.tsv, .jsonl(.gz)"
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to save the model in")] = ...,
    recipe: Annotated[
        Path | None,
        typer.Option(help="A recipe (TOML/JSON) naming sources, label map and options; options given here override it"),
    ] = None,
    label_map: Annotated[
        Path | None, typer.Option(help="Rename/merge labels (TOML/JSON); labels it does not list are dropped")
    ] = None,
    classifier: Annotated[
        str | None, typer.Option(help=f"One of: {', '.join(CLASSIFIERS)} [default: {DEFAULT.classifier}]")
    ] = None,
    c: Annotated[
        float | None, typer.Option("--C", help=f"Inverse regularization strength [default: {DEFAULT.C}]")
    ] = None,
    word_ngrams: Annotated[
        str | None,
        typer.Option(metavar="LOW,HIGH", help=f"Word n-gram range [default: {_range(DEFAULT.word_ngrams)}]"),
    ] = None,
    char_ngrams: Annotated[
        str | None,
        typer.Option(
            metavar="LOW,HIGH", help=f"Char n-gram range, or 0 for none [default: {_range(DEFAULT.char_ngrams)}]"
        ),
    ] = None,
    min_df: Annotated[
        int | None,
        typer.Option(help=f"Keep terms found in at least this many documents [default: {DEFAULT.min_df}]"),
    ] = None,
    max_features: Annotated[
        int | None, typer.Option(help="Keep at most this many terms, most frequent first [default: no limit]")
    ] = None,
    test_size: Annotated[
        float | None,
        typer.Option(help=f"Share held out for the card's scores; 0 trains on all [default: {DEFAULT.test_size}]"),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=f"Seed of the split and the learners [default: {DEFAULT.seed}]")
    ] = None,
    class_weight: Annotated[
        str | None,
        typer.Option(
            help="'balanced' weighs labels inversely to their frequency, 'none' does not [default: "
            f"{DEFAULT.class_weight or 'none'}]"
        ),
    ] = None,
    nb_scaling: Annotated[
        float | None,
        typer.Option(
            help="Scale features by naive Bayes log-count ratios (NB-SVM) for linear_svc and sgd, with this "
            f"smoothing; 0 turns it off [default: {DEFAULT.nb_scaling}]"
        ),
    ] = None,
    class_scaling: Annotated[
        bool | None,
        typer.Option(
            "--class-scaling/--no-class-scaling",
            help="Calibrate with a scale and bias per label besides the temperature "
            f"{_switch('class-scaling', DEFAULT.class_scaling)}",
            show_default=False,
        ),
    ] = None,
    boilerplate_min_docs: Annotated[
        int | None,
        typer.Option(
            help="Drop first/last sentences found in this many training articles (outlet notices); 0 keeps "
            f"them [default: {DEFAULT.boilerplate_min_docs}]"
        ),
    ] = None,
    balance_outlets: Annotated[
        bool | None,
        typer.Option(
            "--balance-outlets/--no-balance-outlets",
            help="Give every outlet the same weight within each label "
            f"{_switch('balance-outlets', DEFAULT.balance_outlets)}",
            show_default=False,
        ),
    ] = None,
    lead_words: Annotated[
        int | None,
        typer.Option(
            help="Also count the word n-grams of each article's first N words as lead terms; 0 turns it off "
            f"[default: {DEFAULT.lead_words}]"
        ),
    ] = None,
    outlet_label_sets: Annotated[
        bool | None,
        typer.Option(
            "--outlet-label-sets/--no-outlet-label-sets",
            help="Count an outlet's articles against a label only if that outlet uses the label (corpora "
            f"mixing outlets with different sections) {_switch('outlet-label-sets', DEFAULT.outlet_label_sets)}",
            show_default=False,
        ),
    ] = None,
    autotune: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="Choose classifier, C, class weight and word n-grams by cross-validation on the training "
            "split within this time (90s, 5m, 1h, or seconds), starting from the options given",
        ),
    ] = None,
    teh_marbuta: Annotated[
        bool | None,
        typer.Option(
            "--teh-marbuta/--no-teh-marbuta",
            help=f"Normalize ة to ه {_switch('teh-marbuta', True)}",
            show_default=False,
        ),
    ] = None,
    dedupe: Annotated[
        bool | None,
        typer.Option(
            "--dedupe/--no-dedupe",
            help=f"Drop duplicate texts and texts found under two labels {_switch('dedupe', DEFAULT.dedupe)}",
            show_default=False,
        ),
    ] = None,
    multi_label: Annotated[
        bool | None,
        typer.Option(
            "--multi-label",
            help="Give an article every label at or above that label's own threshold, tuned on held-out "
            "training data [default: on when a training article lists several labels]",
            show_default=False,
        ),
    ] = None,
    streaming: Annotated[
        bool | None,
        typer.Option(
            "--streaming/--in-memory",
            help="Train in bounded memory: count the corpus in chunks and fit over shards spilled to disk "
            "(reads the sources twice) [default: only when the corpus would not fit --memory-budget]",
            show_default=False,
        ),
    ] = None,
    memory_budget: Annotated[
        str | None,
        typer.Option(
            metavar="SIZE",
            help="Memory the in-memory fit may take before training streams, such as 8GB [default: half the "
            "machine's memory]",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="'local' trains here; 'dask' streams, cleaning and counting each chunk on a Dask cluster "
            "(pip install 'qism[dask]')"
        ),
    ] = "local",
    scheduler: Scheduler = None,
    cluster_timeout: ClusterTimeout = CLUSTER_TIMEOUT,
    base: Annotated[
        str | None,
        typer.Option(
            metavar="MODEL",
            help="Fit the sources' sections toward this model's weights (a model folder, or 'default'): a "
            "newsroom's own model from a few dozen labeled articles, no corpora needed",
        ),
    ] = None,
    keep_base_labels: Annotated[
        bool, typer.Option("--keep-base-labels", help="With --base: keep the base's sections the sources never name")
    ] = False,
    unlabeled: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="With --base: unlabeled articles of the same outlet, used (confident self-training) where "
            "cross-validation on the labeled ones says they help",
        ),
    ] = None,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    input_format: InputFormat = None,
    label_separator: LabelSeparator = None,
    encoding: Encoding = None,
    errors: Errors = None,
    jobs: Jobs = -1,
    as_json: AsJson = False,
):
    """Train a classifier on labeled sources (or a recipe) and save it with its card."""
    options = _given(
        classifier=classifier,
        C=c,
        min_df=min_df,
        max_features=max_features,
        test_size=test_size,
        seed=seed,
        nb_scaling=nb_scaling,
        class_scaling=class_scaling,
        lead_words=lead_words,
        boilerplate_min_docs=boilerplate_min_docs,
        balance_outlets=balance_outlets,
        outlet_label_sets=outlet_label_sets,
        dedupe=dedupe,
        multi_label=multi_label,
        word_ngrams=word_ngrams,
        char_ngrams=char_ngrams,
        class_weight=class_weight,  # "0" and "none": off, whatever a recipe says
        cleaning=None if teh_marbuta is None else {"teh_marbuta": teh_marbuta},
    )
    read = _given(text_column=text_column, label_column=label_column, encoding=encoding, errors=errors)
    read |= _given(input_format=input_format, label_separator=label_separator)
    if base is not None or keep_base_labels or unlabeled is not None:
        _check_base_options(
            base,
            options,
            recipe=recipe,
            label_map=label_map,
            autotune=autotune,
            streaming=streaming is not None,
            engine=engine != "local",
        )
        with _status("training") as status:
            model = train_from_base_and_save(
                out,
                sources or [],
                base,
                read_options=ReadOptions(**read),
                keep_base_labels=keep_base_labels,
                unlabeled=unlabeled,
                seed=options.get("seed", DEFAULT.seed),
                n_jobs=jobs,
                report=status.update,
            )
        return _print_json(model.card) if as_json else typer.echo(_training_summary(out, model.card))
    on_cluster = check_engine(engine, scheduler) == "dask"
    cluster = {
        "scheduler": scheduler,
        "n_workers": None if jobs == -1 else jobs,
        "cluster_timeout": check_cluster_timeout(cluster_timeout),
    }
    cluster = cluster if on_cluster else {}
    with _status("training") as status:
        model = (train_and_save_on_cluster if on_cluster else train_and_save)(
            out,
            sources or [],
            recipe=recipe,
            label_map=label_map,
            train_options=options,
            read_options=read,
            n_jobs=jobs,
            autotune=autotune and parse_duration(autotune),
            streaming=streaming,
            memory_budget=memory_budget,
            report=status.update,
            notice=_note,
            **cluster,
        )
    _print_json(model.card) if as_json else typer.echo(_training_summary(out, model.card))


def _check_base_options(base, options: dict, **others) -> None:
    """--base fits the base's own features: options that shape another model do not apply."""
    if base is None:
        raise QismError("--keep-base-labels and --unlabeled go with --base MODEL")
    given = [name for name in options if name != "seed"] + [name for name, value in others.items() if value]
    if given:
        shown = ", ".join("--" + name.replace("_", "-") for name in given)
        raise QismError(f"{shown}: not with --base, whose model reads text as the base does")


def _training_summary(out: Path, card: dict) -> str:
    lines = [
        f"saved {printable(str(out))} ({len(card['labels'])} labels, {card['split']['train']:,} training documents, "
        f"{card['training_seconds']:.1f} s, {card.get('training', {}).get('path', 'in-memory')})"
    ]
    lines += [autotune_summary(card["autotune"])] if "autotune" in card else []
    lines += data_notes(card)
    lines += [scores_text(card["scores"])] if card["scores"] else []
    return "\n".join(lines)


@app.command("evaluate", short_help="Score a model on labeled data (--report: a page for people).")
@_user_errors
def evaluate_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="Model folder")],
    sources: Annotated[list[str], typer.Argument(metavar="SOURCE", help="Labeled corpora to score the model on")],
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write report.html (self-contained), confusion_matrix.png, per_label.csv and mistakes.csv "
            "into this folder"
        ),
    ] = None,
    lang: Annotated[
        str,
        typer.Option(
            "--lang",
            help=f"Language of the --report page: {', '.join(REPORT_LANGUAGES)} (ar: right to left, labels by "
            "their display names)",
        ),
    ] = "en",
    against: Annotated[
        Path | None, typer.Option(help="A second model folder to compare with, side by side on the same documents")
    ] = None,
    label_map: SectionMap = None,
    as_json: AsJson = False,
    jobs: Jobs = -1,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    input_format: InputFormat = None,
    label_separator: LabelSeparator = None,
    encoding: Encoding = None,
    errors: Errors = None,
):
    """Score a model on labeled data: accuracy, macro-F1 (over the labels the data has), per-label
    scores, confusion matrix, calibration, and accuracy against coverage by --threshold. MODEL
    'default' is the shipped model."""
    check_report_language(lang)  # before the slow part, as the packages
    if report is not None:
        require_picture_packages()
    loaded, other = load_model(model), (load_model(against) if against is not None else None)
    if label_map is not None:
        loaded, other = relabeled(loaded, label_map), other and relabeled(other, label_map)
    for each in (loaded, other):
        each and each.set_jobs(jobs)
    options = ReadOptions(
        **_given(text_column=text_column, label_column=label_column, encoding=encoding, errors=errors),
        **_given(input_format=input_format, label_separator=label_separator),
    )
    result, comparison = evaluate_models(loaded, sources, options, other, names=[str(model), str(against)])
    if report is not None:
        page = write_report(report, loaded, result, sources=sources, lang=lang, model_name=model.name)
        typer.echo(f"report: {printable(str(page))}", err=True)
    shown = comparison if comparison is not None else result.scores
    _print_json(shown) if as_json else typer.echo(
        comparison_text(shown) if comparison is not None else scores_text(shown)
    )


@app.command(
    "predict",
    context_settings={"ignore_unknown_options": True},
    short_help="Label articles: arguments, a file or folder, or standard input.",
)
@_user_errors
def predict_command(
    texts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ARTICLE",
            help="Articles to label ('-' reads standard input; '--' ends the options, for an article that "
            "starts with '-')",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", "-m", metavar="DIR", help="Model folder, or 'default' [default: the shipped default model]"
        ),
    ] = None,
    input_path: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            metavar="PATH",
            help="A file or folder of articles (any supported format; labels not needed)",
        ),
    ] = None,
    input_format: Annotated[
        str | None,
        typer.Option(
            "--input-format",
            metavar="FORMAT",
            help=f"Format of --input when its name does not say: {', '.join(FORMATS)}",
        ),
    ] = None,
    lines: Annotated[
        bool, typer.Option("--lines", help="One article per line (standard input or a .txt file)")
    ] = False,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many labels to give per article, best first")] = 1,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help=f"One of: {', '.join(OUTPUT_FORMATS)}; with --engine dask, jsonl (the default there) or parquet",
        ),
    ] = "table",
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write results to this file (atomically) instead of stdout; with --engine dask, a folder or URL",
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            help="Below this best probability the label is --unknown-label (see `qism evaluate` for coverage "
            "and accuracy); for a multi-label model, above 0 it replaces every label's own threshold"
        ),
    ] = 0.0,
    unknown_label: Annotated[
        str, typer.Option(metavar="NAME", help="The label of articles below --threshold, or without text")
    ] = "unknown",
    explain: Annotated[
        int, typer.Option(metavar="N", help="Show the N terms that pushed each article most towards its label")
    ] = 0,
    id_column: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help=f"Column (CSV) or key (JSONL) holding the ids [default: {_candidates(ID_COLUMNS)}]"
        ),
    ] = None,
    keep_columns: Annotated[
        str | None,
        typer.Option(
            metavar="A,B,...", help="Input columns (CSV) or keys (JSONL) to carry to every output, such as title,url"
        ),
    ] = None,
    bom: Annotated[
        bool, typer.Option("--bom", help="Start CSV output with a UTF-8 byte order mark, so Excel reads the Arabic")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress on stderr (there is none either when the results go to the terminal)"
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an --output (jsonl, csv) that an interrupted run left, without labeling its "
            "records again; with --engine dask, skip the input files already labeled",
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="'local' labels here; 'dask' labels each file of --input (GLOB, folder or URL) as a task on "
            "a Dask cluster, into the folder --output (pip install 'qism[dask]')"
        ),
    ] = "local",
    scheduler: Scheduler = None,
    cluster_timeout: ClusterTimeout = CLUSTER_TIMEOUT,
    gzip_output: Annotated[bool, typer.Option("--gzip", help="With --engine dask: write .labels.jsonl.gz")] = False,
    label_map: SectionMap = None,
    text_column: TextColumn = None,
    encoding: Encoding = None,
    errors: Errors = None,
    jobs: Jobs = -1,
):
    """Label articles given as arguments, in a file or folder, or on standard input; with --engine
    dask, every file of --input on a cluster, each into <input name>.labels.jsonl in --output."""
    if output is None and sys.stdout is None:  # started with >&-
        raise QismError("standard output is closed; write the records to a file with --output")
    options = LabelOptions(top_k=top_k, threshold=threshold, unknown_label=unknown_label, explain=explain)
    read = _input_options(text_column, id_column, encoding, errors, keep_columns)
    if check_engine(engine, scheduler) == "dask":
        cluster = dict(
            model=model,
            scheduler=scheduler,
            resume=resume,
            compress=gzip_output,
            bom=bom,
            jobs=jobs,
            label_map=label_map,
        )
        return _on_cluster(
            texts,
            input_path,
            output,
            output_format,
            quiet,
            read_options=read,
            label_options=options,
            **cluster,
            cluster_timeout=check_cluster_timeout(cluster_timeout),
            input_format="lines" if lines else input_format,
        )
    output = _local_output(output, gzip_output)
    documents = read_inputs(texts or [], input_path, input_format, lines, read, note=_note)
    loaded = load_model(model) if label_map is None else relabeled(load_model(model), label_map)
    shown = not quiet and (output is not None or not sys.stdout.isatty())  # not into results on the screen
    total = (
        len(texts)
        if texts and texts != ["-"]
        else count_documents(input_path, "lines" if lines else input_format)
        if input_path and shown
        else None
    )
    meter = ProgressMeter(total)
    counts = label_to_output(
        loaded,
        documents,
        options,
        fmt=output_format,
        output=output,
        resume=resume,
        bom=bom,
        n_jobs=jobs,
        input_path=input_path,
        read_options=read,
        on_batch=_progress(meter) if shown else lambda n: None,
    )
    _labeled(counts, meter, output)


def _input_options(text_column, id_column, encoding, errors, keep_columns) -> ReadOptions:
    """How `predict` reads its input: labels not needed; the columns and encoding given."""
    return ReadOptions(
        require_labels=False,
        **_given(
            text_column=text_column,
            id_column=id_column,
            encoding=encoding,
            errors=errors,
            keep_columns=keep_columns and parse_columns(keep_columns),
        ),
    )


def _labeled(counts: dict, meter: ProgressMeter, output: Path | None) -> None:
    """What predict says when it is done: its progress summary (or that the output to resume was
    complete already), and how many undecodable characters were replaced."""
    if "already_complete" in counts:
        _note(f"{output} is already complete ({counts['already_complete']:,} records); nothing to resume")
    else:
        _progress_done(meter)
    if counts["replaced_characters"]:
        _note(f"{counts['replaced_characters']:,} undecodable characters were replaced by U+FFFD")


def _local_output(output: str | None, compress: bool) -> Path | None:
    """Where `predict` without --engine dask writes; --gzip is the cluster engine's alone."""
    if compress:
        raise QismError("--gzip is for --engine dask; to compress what predict writes, pipe it through gzip")
    return output if output is None else Path(output)


def _on_cluster(texts, input_path, output: str | None, output_format: str, quiet: bool, **options) -> None:
    """`qism predict --engine dask`: label the files on the cluster and say what was done. The input
    format (or --lines) applies to every file; --bom, for CSV, does not apply."""
    if options.pop("bom"):
        raise QismError("--bom is for --format csv, which --engine dask does not write (jsonl or parquet)")
    if options.pop("label_map") is not None:
        raise QismError("--label-map labels with --engine local only")
    read = dataclasses.replace(options.pop("read_options"), input_format=options.pop("input_format"))
    jobs = options.pop("jobs")
    summary = label_files_on_cluster(
        texts or [],
        input_path,
        output,
        output_format="jsonl" if output_format == "table" else output_format,
        report=(lambda message: None) if quiet else _note,
        read_options=read,
        n_workers=None if jobs == -1 else jobs,
        **options,
    )
    typer.echo(
        f"labeled {summary['labeled']} files ({summary['records']:,} records), skipped {summary['skipped']} "
        f"already labeled, into {printable(str(summary['output']))}"
    )


@app.command("select", short_help="Choose the articles whose labels would teach a model most, as a sheet.")
@_user_errors
def select_command(
    model: Annotated[
        Path, typer.Option("--model", "-m", metavar="DIR", help="Model folder, or 'default' for the shipped one")
    ] = ...,
    input_path: Annotated[
        str, typer.Option("--input", "-i", metavar="PATH", help="Articles to choose from (any supported format)")
    ] = ...,
    n: Annotated[int, typer.Option("-n", help="How many articles to choose")] = 50,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="The sheet: a .csv (UTF-8 with a BOM) or .xlsx")
    ] = ...,
    input_format: Annotated[
        str | None,
        typer.Option("--input-format", metavar="FORMAT", help=f"Format of --input: {', '.join(FORMATS)}"),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option(metavar="NAME", help=f"Column or key of the ids [default: {_candidates(ID_COLUMNS)}]")
    ] = None,
    text_column: TextColumn = None,
    encoding: Encoding = None,
    errors: Errors = None,
    jobs: Jobs = -1,
):
    """Choose the N articles of --input whose labels would teach the model most (the ones it is least
    sure of, not alike), into a sheet with an empty label column for `qism train --base`."""
    read = _input_options(text_column, id_column, encoding, errors, None)
    with _status("choosing") as status:
        written = select_to_file(model, input_path, n, output, read, input_format, n_jobs=jobs, report=status.update)
    typer.echo(f"wrote {output}: {written:,} articles to label (fill the label column)", err=True)


@app.command("serve", short_help="Label articles over HTTP (needs qism[serve]).")
@_user_errors
def serve_command(
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", metavar="DIR", help="Model folder [default: the shipped default model]"),
    ] = None,
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on; 0.0.0.0 for every interface")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(metavar="N", help="Worker processes, each with the model loaded once")] = 1,
    max_pending: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Requests a worker holds at once, labeling or waiting; past it, 503 [default: 64]"
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help=f"Log each request on stderr {_switch('access-log', True)}",
            show_default=False,
        ),
    ] = True,
    log_format: Annotated[
        str, typer.Option(metavar="FORMAT", help="Log lines as text or json (one object a line)")
    ] = "text",
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Require Authorization: Bearer KEY, KEY one of this file's lines (/healthz, /readyz stay open)",
        ),
    ] = None,
    reload_model: Annotated[
        bool,
        typer.Option(
            "--reload-model/--no-reload-model",
            help=f"Reload the model when its folder, or the link to it, changes {_switch('reload-model', False)}",
            show_default=False,
        ),
    ] = False,
    header_timeout: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Close a connection whose request headers take longer [default: 10]"),
    ] = None,
    body_timeout: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Close a connection whose request body takes longer [default: 30]"),
    ] = None,
    corrections: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Append the editor page's corrections to this JSON Lines file (qism train --base reads it)",
        ),
    ] = None,
):
    """Label articles over HTTP: POST /v1/predict, GET /v1/model, /metrics, /healthz, /readyz, /docs, and an
    editor's page at / (needs qism[serve]). SIGHUP reloads the model without dropping a request."""
    check_port(port)
    from .serve import serve  # FastAPI and uvicorn are an extra: imported only for this command

    serve(
        model,
        host=host,
        port=port,
        workers=workers,
        max_pending=max_pending,
        access_log=access_log,
        log_format=log_format,
        api_key_file=api_key_file,
        reload_model=reload_model,
        timeouts=(header_timeout, body_timeout),
        corrections=corrections,
    )


def _note(message: str) -> None:
    typer.echo(f"qism: note: {printable(message)}", err=True)


@app.command("info", short_help="Show a model's card.")
@_user_errors
def info_command(
    model: Annotated[Path | None, typer.Argument(help="Model folder [default: the shipped default model]")] = None,
    as_json: AsJson = False,
):
    """Show a model's card: labels, training data, configuration and held-out scores."""
    card = load_model(model).card
    _print_json(card) if as_json else typer.echo(card_summary(card, str(model or "the default model")))
