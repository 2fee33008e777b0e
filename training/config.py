"""The one set of defaults and their validation: what a training, a reading and a labeling take.

Every module that needs an option reads it from here, and every value a user or a file gives is
checked here, before any corpus is read, with a message that names the option. The estimators'
own defaults are these (see `DEFAULT`), so `Pipeline([TfidfFeaturizer(), LinearClassifier()])` is
the model `qism train` fits.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, fields

from .errors import QismError

CLASSIFIERS = ("sgd", "linear_svc", "logreg", "complement_nb")
CLASS_WEIGHTS = ("balanced", None)
#: What to do with bytes the encoding cannot decode: stop with an error, or put U+FFFD in their place.
DECODE_ERRORS = ("strict", "replace")
#: What a record's title adds to training (`ReadOptions.titles`): nothing beyond the article it heads
#: ("no"), or also the title alone and the title with the article's lead sentence as documents.
TITLE_DOCUMENTS = ("no", "also")
#: Input formats a user can name with --input-format where the path alone does not say.
INPUT_FORMATS = ("folder", "zip", "csv", "tsv", "jsonl", "parquet", "txt", "lines", "fasttext", "xlsx")
#: The switches of `clean.TextCleaner`, one per cleaning step.
CLEANING_STEPS = (
    "diacritics",
    "tatweel",
    "alef",
    "yeh",
    "teh_marbuta",
    "digits",
    "html",
    "urls",
    "emails",
    "mentions",
    "hashtags",
    "punctuation_spacing",
    "breadcrumbs",
    "comment_footer",
    "source_prefix",
    "repeated_lines",
)
#: Longest word and char n-grams: beyond them a model grows without learning more.
MAX_WORD_NGRAM = 5
MAX_CHAR_NGRAM = 10
MAX_LEAD_WORDS = 10_000
MAX_SEED = 2**32 - 1
#: Hashing spaces qism builds and loads: 2**10 to 2**24 buckets.
MIN_BUCKETS, MAX_BUCKETS = 2**10, 2**24
#: Labels a record lists at most, and terms an explanation gives at most.
MAX_TOP_K = 1000
MAX_EXPLAIN_TERMS = 100
#: What `qism predict --format` writes (see `output.py`).
OUTPUT_FORMATS = ("table", "json", "jsonl", "csv")
#: Keys of a labeled record and columns of a CSV output (see `predict.label_documents` and
#: `output.py`): an input column kept with --keep-columns cannot take one of these names.
RECORD_KEYS = ("id", "label", "label_ar", "labels", "labels_ar", "score", "top", "terms", "reason")
_RANKED_COLUMN_RE = re.compile(r"(?:label|label_ar|score)_\d+")
#: Regularization strengths qism trains with: past them SGD's updates overflow (1e300, 1e-300 gave
#: tracebacks); autotune's grid and every model trained so far lie well inside (0.01 to 8).
MIN_C, MAX_C = 1e-4, 1e4
#: NB scaling's smoothing, when on: past these the log-count ratios overflow to infinity or NaN.
MIN_NB_SCALING, MAX_NB_SCALING = 1e-4, 1e4
#: Ports `qism serve` listens on (0: one the system picks).
MAX_PORT = 65535
#: Languages `qism evaluate --report` writes its page in (`report.STRINGS` has a table for each).
REPORT_LANGUAGES = ("en", "ar")


def _integer(value, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise QismError(f"{name} takes a whole number; got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"from {low:,} to {high:,}" if high is not None else f"{low:,} or more"
        raise QismError(f"{name} takes a whole number {bounds}; got {value:,}")
    return value


def _number(
    value, name: str, low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise QismError(f"{name} takes a finite number; got {value!r}")
    if (
        value < low
        or (low_open and value == low)
        or (high is not None and (value > high or (high_open and value == high)))
    ):
        if high is None:
            bounds = f"above {low:g}" if low_open else f"of {low:g} or more"
        else:
            bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise QismError(f"{name} takes a number {bounds}; got {value:g}")
    return float(value)


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise QismError(f"{name} is true or false; got {value!r}")
    return value


def _choice(value, name: str, choices: tuple) -> object:
    if value not in choices:
        raise QismError(f"{name} is one of {', '.join(str(c).lower() for c in choices)}; got {value!r}")
    return value


def check_port(port: int) -> int:
    """`qism serve --port`: a TCP port."""
    return _integer(port, "--port", 0, MAX_PORT)


def check_report_language(lang: str) -> str:
    """`qism evaluate --lang`: a language the report is written in."""
    return _choice(lang, "--lang", REPORT_LANGUAGES)


def _ngram_range(value, name: str, high: int, optional: bool = False) -> tuple[int, int] | None:
    if isinstance(value, str):  # as the command line gives it
        value = parse_ngram_range(value, name)
    if value is None and optional:
        return None
    whole = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if whole and len(value) == 2 and 1 <= value[0] <= value[1] <= high:
        return (value[0], value[1])
    shown = ",".join(map(str, value)) if whole else repr(value)  # as the option takes it: 3,1
    raise QismError(
        f"{name} takes LOW,HIGH with 1 <= LOW <= HIGH <= {high}{', or 0 for none' if optional else ''}; got {shown}"
    )


def parse_columns(text: str) -> tuple[str, ...]:
    """`title,url` as the column names (title, url)."""
    return tuple(name.strip() for name in text.split(","))


def parse_ngram_range(text: str, name: str) -> tuple[int, int] | None:
    """`1,2` (or `2` for 2,2) as a range; `0`, `none` or nothing for none."""
    if text.strip().lower() in ("", "none", "0", "off"):
        return None
    low, _, high = text.partition(",")
    try:
        return (int(low), int(high or low))
    except ValueError:
        raise QismError(f"{name} takes LOW,HIGH such as 1,2; got {text!r}") from None


_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)", re.IGNORECASE)
_SECONDS_PER_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, name: str = "--autotune") -> float:
    """Seconds in `90s`, `5m`, `1h` or a plain number of seconds."""
    match = _DURATION_RE.fullmatch(text.strip())
    if not match:
        raise QismError(f"{name} takes a duration such as 90s, 5m, 1h or a number of seconds; got {text!r}")
    return check_budget(float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2).lower()])


def check_budget(seconds: float) -> float:
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise QismError(f"the autotune budget must be a finite number of seconds above 0; got {seconds!r}")
    return float(seconds)


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "g": 1 << 30,
    "gb": 1 << 30,
    "t": 1 << 40,
    "tb": 1 << 40,
}


def parse_size(text, name: str = "--memory-budget") -> int:
    """Bytes from a size such as 2GB, 500M, 1.5g or 1048576 (binary units), or a number of bytes."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    value = str(text).strip().lower().replace(" ", "")
    number = value.rstrip("kmgtb")
    unit = value[len(number) :]
    try:
        size = float(number)
    except ValueError:
        size = -1.0
    if unit not in _SIZE_UNITS or not math.isfinite(size) or size <= 0:
        raise QismError(f"{name} takes a size such as 4GB, 500MB or 2g; got {text!r}")
    return int(size * _SIZE_UNITS[unit])


#: Where `qism predict` and `qism train` run: here, or on a Dask cluster.
ENGINES = ("local", "dask")
_SCHEDULER_SCHEMES = ("tcp://", "tls://", "inproc://", "ws://", "wss://")
#: Seconds the Dask engine waits, at most, for a scheduler to answer, for a worker to join, and with
#: no worker left to run its tasks, before it stops with one line (`--cluster-timeout`).
CLUSTER_TIMEOUT = 30.0
MAX_CLUSTER_TIMEOUT = 24 * 3600.0


def check_engine(engine: str, scheduler: str | None) -> str:
    """`--engine` and `--scheduler` together: an address (or scheduler file) is for the Dask engine."""
    _choice(engine, "--engine", ENGINES)
    if scheduler is not None and engine != "dask":
        raise QismError("--scheduler is for --engine dask")
    if scheduler is not None and not scheduler.endswith(".json"):
        check_scheduler_address(scheduler, "--scheduler")
    return engine


def check_scheduler_address(address, where: str) -> str:
    """An address of a Dask scheduler (an `inproc://` one is checked when connecting: only a
    scheduler in this same process has one)."""
    if not (isinstance(address, str) and address.startswith(_SCHEDULER_SCHEMES)):
        raise QismError(
            f"{where} takes an address such as tcp://HOST:8786 or a scheduler file (.json); got {str(address)[:80]!r}"
        )
    return address


def check_cluster_timeout(seconds) -> float:
    """`--cluster-timeout`: seconds, above 0."""
    return _number(seconds, "--cluster-timeout", 0, MAX_CLUSTER_TIMEOUT, low_open=True)


def resolve_jobs(n_jobs: int | None) -> int:
    """Processes to use: -1 (or None) is every core; more than the cores is the cores, so neither a
    user nor a model file decides to start hundreds of processes."""
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == -1:
        return cores
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise QismError(f"--jobs takes a number of processes from 1, or -1 for every core; got {n_jobs!r}")
    return min(n_jobs, cores)


def estimator_jobs(n_jobs: int | None) -> int:
    """An estimator's `n_jobs` as scikit-learn reads it (None: one process), bounded like `resolve_jobs`."""
    return 1 if n_jobs is None else resolve_jobs(n_jobs)


@dataclass
class TrainConfig:
    """Everything that decides the model; stored whole in the model card. Checked when made."""

    classifier: str = "sgd"
    C: float = 1.0
    class_weight: str | None = "balanced"
    #: Smoothing of NB log-count-ratio feature scaling for LinearSVC and SGD (0: off).
    nb_scaling: float = 1.0
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = None
    min_df: int = 1
    max_df: float = 1.0
    max_features: int | None = None
    n_buckets: int = 2**20
    sublinear_tf: bool = True
    cleaning: dict[str, bool] = field(default_factory=dict)
    #: Edge segments found in this many training documents are dropped as boilerplate (0: keep them).
    boilerplate_min_docs: int = 5
    #: The word n-grams of an article's first this many words also count as lead terms (0: off).
    lead_words: int = 50
    #: Weigh documents so each outlet counts the same within a label (for corpora mixing outlets).
    balance_outlets: bool = False
    #: An outlet's documents count against a label only if the outlet uses it (for corpora mixing
    #: outlets whose sections differ).
    outlet_label_sets: bool = False
    #: Outlet label sets for these labels only (a section some outlets lack), with or without
    #: `outlet_label_sets`.
    label_set_labels: tuple[str, ...] = ()
    #: The weight an outlet's documents keep in the problem of a label it lacks (0: left out).
    label_set_weight: float = 0.0
    #: The weight of a title or title-and-lead document (read with `titles = "also"`) against its
    #: article's 1, so that short forms teach short input without outweighing the articles.
    title_weight: float = 1.0
    calibration_size: float = 0.1
    #: Also fit a scale and bias per label when calibrating (they fit the training label mix).
    class_scaling: bool = False
    test_size: float = 0.2
    seed: int = 42
    dedupe: bool = True
    #: Give an article every label at or above that label's threshold (one-vs-rest, see
    #: `classifier.choose_thresholds`); also on when a training article lists several labels.
    multi_label: bool = False

    def __post_init__(self):
        self.classifier = _choice(self.classifier, "--classifier", CLASSIFIERS)
        self.C = _number(self.C, "--C", MIN_C, MAX_C)
        if isinstance(self.class_weight, str) and self.class_weight.lower() == "none":
            self.class_weight = None
        self.class_weight = _choice(self.class_weight, "--class-weight", CLASS_WEIGHTS)
        self.nb_scaling = _number(self.nb_scaling, "--nb-scaling", 0, MAX_NB_SCALING)
        if 0 < self.nb_scaling < MIN_NB_SCALING:
            raise QismError(
                f"--nb-scaling takes 0 (off) or a number in [{MIN_NB_SCALING:g}, {MAX_NB_SCALING:g}]; "
                f"got {self.nb_scaling:g}"
            )
        self.word_ngrams = _ngram_range(self.word_ngrams, "--word-ngrams", MAX_WORD_NGRAM)
        self.char_ngrams = _ngram_range(self.char_ngrams, "--char-ngrams", MAX_CHAR_NGRAM, optional=True)
        self.min_df = _integer(self.min_df, "--min-df", 1)
        self.max_df = _number(self.max_df, "max_df", 0, 1, low_open=True)
        if self.max_features is not None:
            self.max_features = _integer(self.max_features, "--max-features", 1)
        self.n_buckets = _integer(self.n_buckets, "n_buckets", MIN_BUCKETS, MAX_BUCKETS)
        self.boilerplate_min_docs = _integer(self.boilerplate_min_docs, "--boilerplate-min-docs", 0)
        self.lead_words = _integer(self.lead_words, "--lead-words", 0, MAX_LEAD_WORDS)
        if isinstance(self.label_set_labels, str) or not all(isinstance(label, str) for label in self.label_set_labels):
            raise QismError(f"label_set_labels is a list of labels; got {self.label_set_labels!r}")
        self.label_set_labels = tuple(self.label_set_labels)
        self.label_set_weight = _number(self.label_set_weight, "label_set_weight", 0, 1)
        self.title_weight = _number(self.title_weight, "title_weight", 0, 1, low_open=True)
        self.calibration_size = _number(self.calibration_size, "calibration_size", 0, 0.5)
        self.test_size = _number(self.test_size, "--test-size", 0, 1, high_open=True)
        self.seed = _integer(self.seed, "--seed", 0, MAX_SEED)
        for name in ("sublinear_tf", "balance_outlets", "outlet_label_sets", "class_scaling", "dedupe", "multi_label"):
            _flag(getattr(self, name), name.replace("_", "-"))
        if self.multi_label and self.classifier == "complement_nb":
            raise QismError("--multi-label learns with sgd, linear_svc or logreg, not complement_nb")
        if not isinstance(self.cleaning, dict):
            raise QismError(f"cleaning is a table of step = true/false; got {self.cleaning!r}")
        unknown = sorted(set(self.cleaning) - set(CLEANING_STEPS))
        if unknown:
            raise QismError(f"unknown cleaning step(s): {', '.join(unknown)}; known: {', '.join(CLEANING_STEPS)}")
        for step, on in self.cleaning.items():
            _flag(on, f"cleaning.{step}")

    @classmethod
    def from_dict(cls, options: dict, where: str = "options") -> TrainConfig:
        """A configuration from a recipe's `[train]` table or a card's `config`, refusing unknown keys."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise QismError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**options)

    def to_dict(self) -> dict:
        """The options as a card records them; `multi_label` only when on, so a single-label model's
        card stays what it was before the option existed."""
        options = asdict(self)
        if not self.multi_label:
            del options["multi_label"]
        return options


#: The product's defaults, which the estimators' own defaults repeat.
DEFAULT = TrainConfig()


@dataclass(frozen=True)
class ReadOptions:
    """How to read sources: column names, encoding, what to do with undecodable bytes (`errors`,
    one of `DECODE_ERRORS`), and whether labels are required. `id_column` names the column (CSV)
    or key (JSON Lines) of the ids; `keep_columns` are input columns that every record carries
    through to the output (a title, a URL)."""

    text_column: str | None = None
    label_column: str | None = None
    encoding: str | None = None
    require_labels: bool = True
    errors: str = "strict"
    id_column: str | None = None
    keep_columns: tuple[str, ...] = ()
    #: The outlet of documents whose record names none (default: the file or folder they came from),
    #: so that the files of one outlet count as one in per-outlet scores and weights.
    outlet: str | None = None
    #: "also": a record's title (CSV column `title`/`headline`, JSON key `title`) also gives two training
    #: documents beside its article, the title alone and the title with the lead sentence.
    titles: str = "no"
    #: What separates the labels of a CSV or TSV cell that holds several (`security|arab affairs`).
    label_separator: str = "|"
    #: The format of every source, when its name does not say (`fasttext` for a `.train` file).
    input_format: str | None = None

    def __post_init__(self):
        if self.errors not in DECODE_ERRORS:
            raise QismError(f"--errors must be one of {', '.join(DECODE_ERRORS)}; got {self.errors!r}")
        if self.titles not in TITLE_DOCUMENTS:
            raise QismError(f"titles must be one of {', '.join(TITLE_DOCUMENTS)}; got {self.titles!r}")
        for name in ("text_column", "label_column", "id_column", "encoding", "outlet"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise QismError(
                    f"--{name.replace('_', '-')} names {'an encoding' if name == 'encoding' else 'a column or key'}; "
                    f"got {value!r}"
                )
        _flag(self.require_labels, "require_labels")
        object.__setattr__(self, "keep_columns", _kept_columns(self.keep_columns))
        if not isinstance(self.label_separator, str) or not self.label_separator.strip():
            raise QismError(f"--label-separator takes characters, such as '|'; got {self.label_separator!r}")
        if self.input_format is not None and self.input_format not in INPUT_FORMATS:
            raise QismError(f"--input-format must be one of {', '.join(INPUT_FORMATS)}; got {self.input_format!r}")

    @property
    def names_table_columns(self) -> bool:
        """Whether these options name columns only a table or JSON Lines source has."""
        return self.id_column is not None or bool(self.keep_columns)

    @classmethod
    def from_dict(cls, options: dict, where: str = "read options") -> ReadOptions:
        known = [f.name for f in fields(cls) if f.name != "require_labels"]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise QismError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**options)


def _kept_columns(names) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(name, str) and name.strip() for name in names):
        raise QismError(f"--keep-columns takes column names separated by commas, such as title,url; got {names!r}")
    names = tuple(names)
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise QismError(f"--keep-columns names {', '.join(map(repr, twice))} twice")
    taken = [name for name in names if name.lower() in RECORD_KEYS or _RANKED_COLUMN_RE.fullmatch(name.lower())]
    if taken:
        raise QismError(
            f"--keep-columns: {', '.join(map(repr, taken))} is a name qism's records use "
            f"({', '.join(RECORD_KEYS)}, label_2, score_2, ...); rename the column in the input"
        )
    return names


@dataclass(frozen=True)
class LabelOptions:
    """What labeling takes: how many labels a record lists (`top_k`), below which best probability
    the label is `unknown_label` (`threshold`), and how many explaining terms (`explain`)."""

    top_k: int = 1
    threshold: float = 0.0
    unknown_label: str = "unknown"
    explain: int = 0

    def __post_init__(self):
        _integer(self.top_k, "--top-k", 1, MAX_TOP_K)
        _number(self.threshold, "--threshold", 0, 1)
        _integer(self.explain, "--explain", 0, MAX_EXPLAIN_TERMS)
        if not isinstance(self.unknown_label, str) or not self.unknown_label.strip():
            raise QismError(f"--unknown-label takes a name; got {self.unknown_label!r}")

    def check_against(self, labels: list[str]) -> None:
        """The unknown label must not be one the model gives."""
        if self.unknown_label in labels:
            raise QismError(
                f"--unknown-label must be a name the model does not use as a label; got {self.unknown_label!r}"
            )
