"""The saved model: a fitted pipeline, its labels and its card, in a folder that is safe to load.

A model folder holds `pipeline.json` (which of qism's own estimator classes, with what parameters),
`arrays.npz` (their fitted arrays, read with `allow_pickle=False`), `card.json` and `card.md`.
Loading builds only classes from a fixed list and reads only numbers and text: no code from the
folder runs, unlike pickle or joblib files. The card carries a SHA-256 of both files and of itself
(`card_sha256`), so a truncated, damaged or carelessly edited model is refused before use. These
checksums are integrity, not a signature: anyone who edits a model can recompute them. So every
value is also checked as it is loaded (parameters within the bounds `qism train` takes, arrays of
the shapes, types and sizes the pipeline needs, finite weights, labels each once), and only a model
that passes labels a text.

Saving replaces only an empty folder or a qism model (`check_model_folder`): never a training
source, the current folder, or a folder holding anything else.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from .card import card_markdown, card_summary, package_versions, qism_version
from .classifier import LOG_TEMPERATURE_BOUNDS, LinearClassifier, chosen_labels
from .clean import TextCleaner
from .config import TrainConfig, resolve_jobs
from .errors import QismError
from .explain import explain
from .features import TfidfFeaturizer
from .files import staged_folder

FORMAT_VERSION = 1
PIPELINE_FILE = "pipeline.json"
ARRAYS_FILE = "arrays.npz"
CARD_FILE = "card.json"
CARD_MARKDOWN = "card.md"
#: What a model folder holds, and all it may hold for qism to replace it.
MODEL_FILES = frozenset({PIPELINE_FILE, ARRAYS_FILE, CARD_FILE, CARD_MARKDOWN})
#: The card's own marker: this folder is a qism model.
CARD_FORMAT = "qism-model-card"
#: Largest card.json and pipeline.json read (a card is a few kilobytes, a pipeline two).
MAX_JSON_BYTES = 16 * 2**20
#: Most memory a model's files may claim once loaded, checked from their sizes and the arrays'
#: headers before anything is allocated: the JSON files parsed (LOADED_JSON_PER_BYTE times their
#: size) and the arrays unpacked, the classifier's weights twice (it keeps a copy by feature for
#: sparse products). The default model claims 46 MB.
MAX_ARRAYS_BYTES = 4 * 2**30
#: Memory parsed JSON takes per byte of file at most: 16 MiB of `[],` parse to 395 MB of lists.
LOADED_JSON_PER_BYTE = 25
#: What loading takes besides the files' claim: Python with NumPy and scikit-learn, the checks'
#: blocks and labeling one text (`bench/model_memory.py`: about 230 MB over the claim).
LOAD_ALLOWANCE = 256 * 2**20
#: Arrays the loaded model holds twice (see `LinearClassifier`'s by-feature copy of its weights).
HELD_TWICE = frozenset({"classifier.coef_"})
#: Largest weight or bias: training gives tens; beyond this a score could overflow to NaN.
MAX_WEIGHT = 1e12
#: Largest idf: smoothed idf is 1 + ln((1 + documents) / (1 + df)), under 45 for any corpus.
MAX_IDF = 100.0
#: Most boilerplate segments a model keeps (the default model keeps 128).
MAX_BOILERPLATE_KEYS = 1_000_000

#: Where the shipped default model is: inside the installed package (a wheel maps models/default
#: there), else in the source checkout.
DEFAULT_MODEL_PLACES = (Path(__file__).parent / "default_model", Path(__file__).parent.parent / "models" / "default")


def default_model_dir() -> Path:
    """The folder of the default model `qism predict` uses when no --model is given."""
    for place in DEFAULT_MODEL_PLACES:
        if (place / CARD_FILE).is_file():
            return place
    raise QismError("no default model is installed; give --model DIR (train one with `qism train`)")


#: The name that means the shipped default model wherever a model folder is asked for.
DEFAULT_MODEL_NAME = "default"


def model_dir(directory: str | os.PathLike | None) -> Path:
    """The folder of the model a user names: none, or `default` when no folder of that name is here,
    is the shipped default model."""
    if directory is None or (str(directory) == DEFAULT_MODEL_NAME and not os.path.lexists(directory)):
        return default_model_dir()
    return Path(directory)


#: The only classes a model file may name.
LOADABLE = {cls.__name__: cls for cls in (Pipeline, TfidfFeaturizer, TextCleaner, LinearClassifier)}


# --- pipeline <-> (JSON spec, arrays) ---------------------------------------------------------


def _encode(estimator: BaseEstimator, prefix: str, arrays: dict[str, np.ndarray]) -> dict:
    name = type(estimator).__name__
    if name not in LOADABLE:
        raise TypeError(f"{name} cannot be saved in a qism model")
    if isinstance(estimator, Pipeline):
        return {
            "class": name,
            "steps": [[step, _encode(est, f"{prefix}{step}.", arrays)] for step, est in estimator.steps],
        }
    params = {}
    for key, value in estimator.get_params(deep=False).items():
        if key == "n_jobs":
            params[key] = None  # how many processes run is the user's choice when labeling, not the file's
        elif isinstance(value, BaseEstimator):
            params[key] = _encode(value, f"{prefix}{key}.", arrays)
        elif isinstance(value, tuple):
            params[key] = list(value)
        else:
            params[key] = value
    fitted = {}
    for key in sorted(FITTED[type(estimator)]):  # in one order, however the estimator was made
        if key in vars(estimator):
            value = vars(estimator)[key]
            if isinstance(value, np.ndarray):
                arrays[prefix + key] = value
                fitted[key] = {"array": prefix + key}
            else:
                fitted[key] = value
    return {"class": name, "params": params, "fitted": fitted}


def _decode(spec: dict, pending: list[tuple[BaseEstimator, str, str]]) -> BaseEstimator:
    """The estimator a spec describes; its fitted arrays are listed in `pending` as (estimator,
    attribute, array name), to be read once the whole spec has been checked."""
    if not isinstance(spec, dict):
        raise ValueError(f"expected an estimator, found {str(spec)[:40]!r}")
    cls = LOADABLE.get(spec.get("class"))
    if cls is None:
        raise QismError(f"model names a class qism does not load: {spec.get('class')!r}")
    if cls is Pipeline:
        return Pipeline([(step, _decode(sub, pending)) for step, sub in spec["steps"]])
    unknown = sorted(set(spec["params"]) - set(cls._get_param_names()))
    if unknown:
        raise TypeError(f"{cls.__name__} has no parameter {', '.join(map(repr, unknown))}")
    params = {
        key: _decode(value, pending) if isinstance(value, dict) else tuple(value) if isinstance(value, list) else value
        for key, value in spec["params"].items()
    }
    estimator = cls(**params)
    kinds = FITTED[cls]
    for key, value in spec.get("fitted", {}).items():
        if not (key.endswith("_") and key[0].isalpha()):
            raise QismError(f"model sets a non-fitted attribute {key!r}")
        if key not in kinds:
            raise ValueError(f"{cls.__name__} has no fitted attribute {key!r}")
        if (kinds[key] == "array") != (isinstance(value, dict) and set(value) == {"array"}):
            raise ValueError(f"{cls.__name__}.{key} must be {'an array' if kinds[key] == 'array' else 'a number'}")
        if kinds[key] == "array":
            pending.append((estimator, key, str(value["array"])))
        else:
            setattr(estimator, key, value)
    return estimator


#: The fitted attributes each class saves: an array in arrays.npz, or a number in pipeline.json.
FITTED = {
    Pipeline: {},
    TextCleaner: {},
    TfidfFeaturizer: {"boilerplate_": "array", "columns_": "array", "idf_": "array", "n_features_out_": "number"},
    LinearClassifier: {
        "classes_": "array",
        "coef_": "array",
        "intercept_": "array",
        "temperature_": "number",
        "thresholds_": "array",
    },
}


#: An array as its .npy header declares it: (zip member, dtype, shape, Fortran order).
Declared = tuple[zipfile.ZipInfo, np.dtype, tuple, bool]


def _npy_header(member) -> tuple[tuple, bool, np.dtype]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(member)
    raise ValueError(f"a NumPy file of version {version}, which qism does not read")


def _declared_arrays(archive: zipfile.ZipFile, names: set[str], budget: int) -> dict[str, Declared]:
    """What the members `names` of an .npz archive declare, read from the zip and .npy headers only:
    the archive must hold those members and no others, each once, taking at most `budget` bytes
    once loaded (those HELD_TWICE counted twice), each holding exactly the bytes its header
    declares, and no Python objects."""
    infos = archive.infolist()
    members = Counter(info.filename for info in infos)
    twice = sorted(name for name, count in members.items() if count > 1)
    if twice:
        raise ValueError(f"{ARRAYS_FILE} holds {twice[0]!r} twice")
    unused = sorted(set(members) - {f"{name}.npy" for name in names})
    if unused:
        raise ValueError(f"{ARRAYS_FILE} holds {unused[0]!r}, which no step of the model uses")
    missing = sorted(name for name in names if f"{name}.npy" not in members)
    if missing:
        raise ValueError(f"{ARRAYS_FILE} lacks the array {missing[0]!r}")
    loaded = sum(info.file_size * (2 if info.filename.removesuffix(".npy") in HELD_TWICE else 1) for info in infos)
    if loaded > budget:
        raise ValueError(
            f"{ARRAYS_FILE} would take {loaded:,} bytes once loaded (its weights twice), more than the "
            f"{budget:,} left of the {MAX_ARRAYS_BYTES:,} a model may take"
        )
    declared = {}
    for info in infos:
        with archive.open(info) as member:
            shape, fortran_order, dtype = _npy_header(member)
            if dtype.hasobject:
                raise ValueError(f"{info.filename} holds Python objects (pickled data), which qism never loads")
            size, held = math.prod(shape) * dtype.itemsize, info.file_size - member.tell()
        if size != held:
            raise ValueError(f"{info.filename} declares {size:,} bytes of data but holds {held:,}")
        declared[info.filename.removesuffix(".npy")] = (info, dtype, shape, fortran_order)
    return declared


def _stand_in(declared: Declared) -> np.ndarray:
    """An array of the declared dtype and shape that takes no memory, to check shapes before reading."""
    _, dtype, shape, _ = declared
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape, (0,) * len(shape), writeable=False)


#: Bytes of an array unpacked at a time, straight into the array: reading a member whole first held
#: it twice (a 27 MB model declaring 3.9 GiB took 8.2 GB to load).
READ_BLOCK = 16 * 2**20


def _read_declared(archive: zipfile.ZipFile, declared: Declared) -> np.ndarray:
    """An array of arrays.npz read into memory allocated once for what its header declares."""
    info, dtype, shape, fortran_order = declared
    array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
    into = memoryview(array.reshape(-1, order="A").view(np.uint8))
    with archive.open(info) as member:
        _npy_header(member)
        filled = 0
        while filled < len(into):
            block = member.read(min(READ_BLOCK, len(into) - filled))
            if not block:
                raise ValueError(f"{info.filename} is cut short")
            into[filled : filled + len(block)] = block
            filled += len(block)
    return array


def _fill_arrays(
    path: Path, pipeline: Pipeline, pending: list[tuple[BaseEstimator, str, str]], budget: int = MAX_ARRAYS_BYTES
) -> None:
    """Set the fitted arrays of a decoded pipeline from arrays.npz, once the parameters are within
    bounds and the shapes the archive's headers declare fit the pipeline and `budget`: no data is
    read before."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{ARRAYS_FILE} is not a NumPy archive") from None
    with archive:
        declared = _declared_arrays(archive, {name for _, _, name in pending}, budget)
        for estimator, key, name in pending:
            setattr(estimator, key, _stand_in(declared[name]))
        features, classifier = _model_steps(pipeline)
        _check_parameters(features, classifier)
        _check_shapes(features, classifier)
        for estimator, key, name in pending:
            setattr(estimator, key, _read_declared(archive, declared[name]))


# --- what a loadable model is -----------------------------------------------------------------


def _model_steps(pipeline) -> tuple[TfidfFeaturizer, LinearClassifier]:
    """The featurizer and classifier of a qism pipeline, the only shape of pipeline a model has."""
    steps = pipeline.steps if isinstance(pipeline, Pipeline) else None
    if not (
        steps
        and [name for name, _ in steps] == ["features", "classifier"]
        and isinstance(steps[0][1], TfidfFeaturizer)
        and isinstance(steps[1][1], LinearClassifier)
    ):
        raise ValueError("the pipeline is not TF-IDF features followed by a linear classifier")
    return steps[0][1], steps[1][1]


def _check_parameters(features: TfidfFeaturizer, classifier: LinearClassifier) -> None:
    """The parameters within the bounds `qism train` takes (those of `TrainConfig`)."""
    cleaner = features.cleaner
    if not (cleaner is None or cleaner == "passthrough" or isinstance(cleaner, TextCleaner)):
        raise ValueError(f"the cleaner is a TextCleaner, none or 'passthrough'; got {str(cleaner)[:40]!r}")
    if features.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype is float32 or float64; got {str(features.dtype)[:40]!r}")
    try:
        TrainConfig(
            classifier=classifier.kind,
            C=classifier.C,
            class_weight=classifier.class_weight,
            nb_scaling=classifier.nb_scaling,
            word_ngrams=features.word_ngrams,
            char_ngrams=features.char_ngrams,
            min_df=features.min_df,
            max_df=features.max_df,
            max_features=features.max_features,
            n_buckets=features.n_buckets,
            sublinear_tf=features.sublinear_tf,
            cleaning=cleaner.get_params() if isinstance(cleaner, TextCleaner) else {},
            boilerplate_min_docs=features.boilerplate_min_docs,
            lead_words=features.lead_words,
            outlet_label_sets=classifier.outlet_label_sets,
            calibration_size=classifier.calibration_size,
            class_scaling=classifier.class_scaling,
            seed=classifier.random_state,
        )
    except QismError as err:
        raise ValueError(f"a parameter out of bounds: {err}") from None


def _fitted_array(estimator, key: str, kinds: str, shape: tuple) -> np.ndarray:
    """A fitted array of one of the dtype `kinds`, of `shape` (None: any length there)."""
    value = getattr(estimator, key, None)
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{type(estimator).__name__} lacks its fitted {key}")
    if (
        value.dtype.kind not in kinds
        or value.ndim != len(shape)
        or any(want is not None and have != want for have, want in zip(value.shape, shape))
    ):
        raise ValueError(f"{key} is an array of {value.dtype} shaped {value.shape}; expected {shape} of kind {kinds!r}")
    return value


def _within(value: np.ndarray, key: str, low: float, high: float) -> None:
    """Every value finite and in [low, high], checked a block at a time (no temporary as large as the array)."""
    flat = value.reshape(-1, order="A")
    for start in range(0, flat.size, READ_BLOCK):
        block = flat[start : start + READ_BLOCK]
        if not (np.isfinite(block).all() and block.min() >= low and block.max() <= high):
            raise ValueError(f"{key} holds values that are not finite or outside [{low:g}, {high:g}]")


def _check_shapes(features: TfidfFeaturizer, classifier: LinearClassifier) -> None:
    """Fitted arrays of the types and shapes the pipeline needs (what their headers declare is
    checked so before their data is read): at most `n_buckets` columns, weights of one row per
    label and one column per kept bucket."""
    columns = _fitted_array(features, "columns_", "iu", (None,))
    if not 0 < len(columns) <= features.n_buckets:
        raise ValueError(
            f"columns_ must keep from 1 to n_buckets ({features.n_buckets:,}) buckets; it keeps {len(columns):,}"
        )
    _fitted_array(features, "idf_", "f", (len(columns),))
    if getattr(features, "n_features_out_", len(columns)) != len(columns):
        raise ValueError(f"n_features_out_ is not the {len(columns):,} columns kept")
    if (
        hasattr(features, "boilerplate_")
        and len(_fitted_array(features, "boilerplate_", "u", (None,))) > MAX_BOILERPLATE_KEYS
    ):
        raise ValueError(f"boilerplate_ holds more than {MAX_BOILERPLATE_KEYS:,} segments")
    classes = _fitted_array(classifier, "classes_", "Uiu", (None,))
    if len(classes) < 2:
        raise ValueError("classes_ must list two labels or more")
    _fitted_array(classifier, "coef_", "f", (len(classes), len(columns)))
    _fitted_array(classifier, "intercept_", "f", (len(classes),))
    if getattr(classifier, "thresholds_", None) is not None:
        _fitted_array(classifier, "thresholds_", "f", (len(classes),))


def _check_values(features: TfidfFeaturizer, classifier: LinearClassifier) -> None:
    """Fitted values within bounds: kept buckets sorted, distinct and inside the hashing space, finite
    weights and idf, each label once, a temperature calibration could have fitted."""
    columns = features.columns_
    ascending = all(
        (np.diff(columns[start : start + READ_BLOCK + 1].astype(np.int64)) > 0).all()
        for start in range(0, len(columns), READ_BLOCK)
    )  # a block at a time, each overlapping the next by one
    if not ascending or columns[0] < 0 or columns[-1] >= features.n_buckets:
        raise ValueError("columns_ must be distinct buckets, sorted, from 0 to n_buckets - 1")
    _within(features.idf_, "idf_", 0, MAX_IDF)
    classes = classifier.classes_
    if len(np.unique(classes)) != len(classes):
        raise ValueError("classes_ lists a label twice")
    if any(not str(label).strip() for label in classes):
        raise ValueError("classes_ holds an empty label")
    _within(classifier.coef_, "coef_", -MAX_WEIGHT, MAX_WEIGHT)
    _within(classifier.intercept_, "intercept_", -MAX_WEIGHT, MAX_WEIGHT)
    if classifier.is_multi_label:
        _within(classifier.thresholds_, "thresholds_", 0, 1)
    temperature = getattr(classifier, "temperature_", None)
    low, high = (math.exp(bound) for bound in LOG_TEMPERATURE_BOUNDS)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not low <= temperature <= high:
        raise ValueError(f"temperature_ must be a number from {low:.3g} to {high:.3g}; got {str(temperature)[:40]}")


def _check_loadable(pipeline) -> tuple[TfidfFeaturizer, LinearClassifier]:
    """What `load_model` requires of a pipeline; `Model.save` requires it too, so it never writes a
    model that would not load. Raises ValueError saying what is wrong."""
    features, classifier = _model_steps(pipeline)
    _check_parameters(features, classifier)
    _check_shapes(features, classifier)
    _check_values(features, classifier)
    return features, classifier


def card_checksum(card: dict) -> str:
    """SHA-256 of a card's content without its own checksum (keys sorted, compact JSON)."""
    content = {key: value for key, value in card.items() if key != "card_sha256"}
    return hashlib.sha256(
        json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()


def _sealed(card: dict, files: dict[str, str]) -> dict:
    """The card as saved: marked as a qism model's, with the checksums of the files and of itself."""
    content = {
        "format": CARD_FORMAT,
        **{key: value for key, value in card.items() if key not in ("format", "files", "card_sha256")},
        "files": files,
    }
    content = json.loads(json.dumps(content, ensure_ascii=False))  # as it reads back: lists for tuples, keys as text
    return {**content, "card_sha256": card_checksum(content)}


def _check_card(card: dict, labels: list[str]) -> None:
    """The parts of a card qism uses: label counts and display names for the model's own labels,
    each name once; the rest must render (`qism info`, card.md)."""
    counts = card.get("labels", {})
    if not isinstance(counts, dict) or not all(isinstance(n, int) and not isinstance(n, bool) for n in counts.values()):
        raise ValueError(f"{CARD_FILE}: labels is not a table of label counts")
    names = card.get("label_names", {})
    if not isinstance(names, dict) or not all(isinstance(name, str) and name.strip() for name in names.values()):
        raise ValueError(f"{CARD_FILE}: label_names is not a table of label names")
    strangers = sorted(set(names) - set(labels))
    if strangers:
        raise ValueError(
            f"{CARD_FILE}: label_names names labels the model does not have: {', '.join(map(repr, strangers[:3]))}"
        )
    twice = sorted(name for name, count in Counter(names.values()).items() if count > 1)
    if twice:
        raise ValueError(f"{CARD_FILE}: label_names gives two labels the name {twice[0]!r}")
    try:
        card_summary(card, "model")
        card_markdown(card)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as err:
        raise ValueError(f"{CARD_FILE} holds values qism cannot show ({type(err).__name__}: {str(err)[:80]})") from None


def _read_json(path: Path):
    """A JSON file of a model, refusing one larger than MAX_JSON_BYTES before reading it."""
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(
            f"{path.name}: {size:,} bytes, larger than the {MAX_JSON_BYTES:,} a model's {path.name} may be"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _is_model_card(path: Path) -> bool:
    """Whether `path` is the card of a qism model (also one saved before cards carried their marker).
    A card that vanished while it was read raises FileNotFoundError: another save swapped its folder."""
    try:
        card = _read_json(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(card, dict):
        return False
    files = card.get("files")
    return card.get("format") == CARD_FORMAT or (isinstance(files, dict) and set(files) == {PIPELINE_FILE, ARRAYS_FILE})


#: How often a model folder that other saves keep swapping is read again before giving up.
MAX_LOOKS = 20


def _strangers(target: Path) -> list[str]:
    """What in the folder `target` is not a qism model's file."""
    with os.scandir(target) as scan:
        entries = {entry.name: entry.is_file(follow_symlinks=False) for entry in scan}
    strangers = sorted(
        name + ("" if is_file else "/") for name, is_file in entries.items() if name not in MODEL_FILES or not is_file
    )
    if entries and not strangers and not _is_model_card(target / CARD_FILE):
        strangers = [f"{CARD_FILE} that is not a qism model's" if CARD_FILE in entries else f"no {CARD_FILE}"]
    return strangers


def check_model_folder(directory: str | os.PathLike, sources=()) -> Path:
    """Where a model saved at `directory` goes (a link is written through), once it is clear that
    saving there replaces nothing but a qism model: a folder that is, holds or lies inside one of
    the training `sources`, that is or holds the current folder, or that holds anything but a
    model's files is refused. `qism train` checks before training, `Model.save` again."""
    directory = Path(directory)
    target = Path(os.path.realpath(directory))
    for source in sources:
        if str(source) == "-" or not os.path.exists(source):
            continue
        real = Path(os.path.realpath(source))
        if real == target:
            raise QismError(f"{directory}: is the training source {source}; save the model in a folder of its own")
        if real.is_relative_to(target):
            raise QismError(f"{directory}: holds the training source {source}; save the model in a folder of its own")
        if real.is_dir() and target.is_relative_to(real):
            raise QismError(
                f"{directory}: lies inside the training source {source}, which a model there would "
                "change; save the model elsewhere"
            )
    here = Path.cwd().resolve()
    if here == target or here.is_relative_to(target):
        raise QismError(
            f"{directory}: {'is' if here == target else 'holds'} the current folder; "
            "save the model in a folder of its own"
        )
    for _ in range(MAX_LOOKS):
        try:
            if not stat.S_ISDIR(os.stat(target).st_mode):
                raise QismError(f"{directory}: exists and is not a folder")
            strangers = _strangers(target)
            break
        except FileNotFoundError:  # nothing there, or a save beside this one swapped it while it was read
            if not os.path.lexists(target):
                return target
    else:
        raise QismError(f"{directory}: changes while it is read (other saves to it?); try again")
    if strangers:
        shown = ", ".join(strangers[:3]) + (f" and {len(strangers) - 3:,} more" if len(strangers) > 3 else "")
        raise QismError(
            f"{directory}: holds files that are not a qism model's ({shown}); qism replaces only a model "
            "folder, so save the model elsewhere"
        )
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the model --------------------------------------------------------------------------------


def _as_texts(texts: str | Iterable[str]) -> list[str]:
    """A string is one text (as fastText's `predict` takes one or a list), anything else a sequence."""
    return [texts] if isinstance(texts, str) else list(texts)


def top_labels(proba: np.ndarray, labels: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The `k` most probable labels of each row, with their probabilities, best first."""
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return [[(labels[j], float(row[j])) for j in best] for row, best in zip(proba, order)]


def chosen_with_scores(proba: np.ndarray, labels: list[str], thresholds) -> list[list[tuple[str, float]]]:
    """Each row's chosen labels (see `classifier.chosen_labels`) with their probabilities, best first."""
    chosen = chosen_labels(proba, thresholds)
    order = np.argsort(-proba, axis=1, kind="stable")
    return [[(labels[j], float(row[j])) for j in best if picked[j]] for row, best, picked in zip(proba, order, chosen)]


@dataclass
class Model:
    """A fitted pipeline (raw text in, label scores out) and its card: the one door to labeling."""

    pipeline: Pipeline
    card: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [str(label) for label in self.pipeline.classes_]

    @property
    def label_names(self) -> dict[str, str]:
        """Display names of the labels (e.g. Arabic section names), when a label map gave them."""
        return self.card.get("label_names", {})

    def predict_proba(self, texts: str | Iterable[str]) -> np.ndarray:
        """Calibrated probabilities, one row per text, columns in the order of `labels`."""
        return self.pipeline.predict_proba(_as_texts(texts))

    @property
    def is_multi_label(self) -> bool:
        """Whether the model gives an article every section at or above that section's threshold."""
        return self.pipeline.named_steps["classifier"].is_multi_label

    def predict(self, texts: str | Iterable[str]) -> list[str] | list[list[str]]:
        """The best label of each text; for a multi-label model, the list of its labels, best first."""
        if self.is_multi_label:
            return [[label for label, _ in chosen] for chosen in self.predict_chosen(texts)]
        labels = self.labels
        return [labels[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def predict_chosen(
        self, texts: str | Iterable[str], threshold: float | None = None
    ) -> list[list[tuple[str, float]]]:
        """A multi-label model's labels of each text with their probabilities, best first: those at or
        above their own threshold (or `threshold` for all), and always the best one."""
        return chosen_with_scores(self.predict_proba(texts), self.labels, self.label_thresholds(threshold))

    def label_thresholds(self, threshold: float | None = None) -> np.ndarray:
        """Each label's threshold: the model's own (tuned when it was trained), or `threshold` for all."""
        classifier = self.pipeline.named_steps["classifier"]
        return classifier.thresholds_ if threshold is None else np.full(len(self.labels), threshold)

    def predict_top(
        self, texts: str | Iterable[str], k: int = 3, threshold: float = 0.0
    ) -> list[list[tuple[str, float]]]:
        """The `k` most probable labels of each text with their probabilities, best first, keeping
        those of probability at least `threshold` (as fastText's `predict`): an empty list is a text
        the model is unsure of."""
        tops = top_labels(self.predict_proba(texts), self.labels, k)
        return [[(label, p) for label, p in top if p >= threshold] for top in tops]

    def explain(self, texts: str | Iterable[str], n: int) -> tuple[np.ndarray, list[list[dict]]]:
        """Probabilities of `texts` and, for each, the `n` terms that pushed it most towards its best
        label, with what each adds to that label's log-odds (see `explain.explain`)."""
        return explain(self.pipeline, _as_texts(texts), n)

    def set_jobs(self, n_jobs: int | None) -> None:
        """How many processes featurize text when this model labels many articles (-1: every core;
        never more than the cores, see `config.resolve_jobs`, which refuses 0)."""
        n_jobs = resolve_jobs(n_jobs)
        self.pipeline.set_params(features__n_jobs=n_jobs, classifier__n_jobs=n_jobs)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the model folder atomically: a complete new model, or the old one untouched. Only an
        empty folder or a qism model is replaced (see `check_model_folder`)."""
        sources = [
            s["path"] for s in self.card.get("sources", []) if isinstance(s, dict) and isinstance(s.get("path"), str)
        ]
        target = check_model_folder(directory, sources)
        try:
            _check_loadable(self.pipeline)
        except ValueError as err:
            raise QismError(f"cannot save this model, qism would not load it: {err}") from None
        arrays: dict[str, np.ndarray] = {}
        spec = {
            "format": "qism-model",
            "format_version": FORMAT_VERSION,
            "versions": package_versions(),
            "pipeline": _encode(self.pipeline, "", arrays),
        }
        with staged_folder(target, MODEL_FILES) as staging:
            (staging / PIPELINE_FILE).write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
            with open(staging / ARRAYS_FILE, "wb") as handle:
                np.savez_compressed(handle, **arrays)
            sealed = _sealed(self.card, {name: _sha256(staging / name) for name in (PIPELINE_FILE, ARRAYS_FILE)})
            (staging / CARD_FILE).write_text(json.dumps(sealed, ensure_ascii=False, indent=2), encoding="utf-8")
            (staging / CARD_MARKDOWN).write_text(card_markdown(sealed), encoding="utf-8")
            _check_written(staging)
        self.card.clear()
        self.card.update(sealed)
        return Path(directory)


def _check_written(staging: Path) -> None:
    """Load a model folder just written, before it replaces anything: a model qism would not load
    (a label map with two equal display names, a blank one, a card that does not render) is
    refused when it is saved, and the folder it would have replaced stays as it was."""
    try:
        load_model(staging)
    except QismError as err:
        reason = str(err).removeprefix(f"{staging}: ").removeprefix("cannot read the model ")
        raise QismError(f"cannot save this model, qism would not load it: {reason}") from None


#: What a damaged, crafted or incompatible model file can raise while it is read, built and tried.
_BAD_MODEL_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    ArithmeticError,
    MemoryError,
    OSError,
    EOFError,
    RecursionError,
    zipfile.BadZipFile,
)


def _minor(version) -> str | None:
    return ".".join(str(version).split(".")[:2]) if version else None


def _cannot_use(directory: Path, spec, err: Exception) -> str:
    """Why a model cannot be used, naming the versions that saved it and the running ones when they differ."""
    saved = spec.get("versions") if isinstance(spec, dict) else None
    saved = saved if isinstance(saved, dict) else {}
    running = package_versions()
    if any(_minor(saved.get(name)) != _minor(running[name]) for name in ("qism", "scikit-learn") if saved.get(name)):
        return (
            f"{directory}: saved by qism {saved.get('qism')} with scikit-learn {saved.get('scikit-learn')}, it does "
            f"not work with qism {running['qism']} and scikit-learn {running['scikit-learn']} ({err}); "
            "retrain it, or install the versions it was saved with"
        )
    return f"{directory}: cannot read the model ({err})"


def _check_works(pipeline: Pipeline) -> None:
    """Label one text, so a model whose arrays do not fit together (or do not suit this version of
    scikit-learn) fails when it is loaded, not half-way through a run."""
    proba = pipeline.predict_proba(["نص للتجربة"])
    if proba.shape != (1, len(pipeline.classes_)) or not np.isfinite(proba).all():
        raise ValueError("its arrays do not fit together")


def load_model(directory: str | os.PathLike | None = None) -> Model:
    """Load a model folder (the shipped default model when none is named, or `default`), refusing one that is
    incomplete, altered, or of a newer format.

    A model saved by other versions of qism or scikit-learn loads when its arrays still work here
    (they are plain numbers); otherwise the message names both sets of versions.
    """
    directory = model_dir(directory)
    if not directory.is_dir():
        raise QismError(f"{directory}: no model folder here (train one with `qism train`)")
    missing = [name for name in (PIPELINE_FILE, ARRAYS_FILE, CARD_FILE) if not (directory / name).is_file()]
    if missing:
        raise QismError(f"{directory}: not a complete qism model (missing {', '.join(missing)})")
    spec = None
    try:
        card = _read_json(directory / CARD_FILE)
        checksums = card.get("files") if isinstance(card, dict) else None
        if not isinstance(checksums, dict) or set(checksums) != {PIPELINE_FILE, ARRAYS_FILE}:
            raise QismError(f"{directory}: the card lists no checksums; the model cannot be verified")
        if "format" in card or "card_sha256" in card:  # cards saved before qism 0.2 have neither
            if card.get("format") != CARD_FORMAT or not isinstance(card.get("card_sha256"), str):
                raise QismError(
                    f"{directory / CARD_FILE}: the card has no checksum of its own; the model cannot be verified"
                )
            if card_checksum(card) != card["card_sha256"]:
                raise QismError(
                    f"{directory / CARD_FILE}: checksum does not match its content; the card is damaged or was altered"
                )
        for name, expected in checksums.items():
            if _sha256(directory / name) != expected:
                raise QismError(
                    f"{directory / name}: checksum does not match the card; the model is damaged or was altered"
                )
        spec = _read_json(directory / PIPELINE_FILE)
        if spec.get("format") != "qism-model":
            raise QismError(f"{directory}: not a qism model")
        if spec.get("format_version") != FORMAT_VERSION:
            saved_by = spec.get("versions", {}).get("qism", "unknown")
            raise QismError(
                f"{directory}: model format {spec.get('format_version')} (saved by qism {saved_by}) "
                f"cannot be read by qism {qism_version()} (format {FORMAT_VERSION}); retrain it"
            )
        pending: list[tuple[BaseEstimator, str, str]] = []
        pipeline = _decode(spec["pipeline"], pending)
        json_claim = LOADED_JSON_PER_BYTE * sum(
            (directory / name).stat().st_size for name in (CARD_FILE, PIPELINE_FILE)
        )
        _fill_arrays(directory / ARRAYS_FILE, pipeline, pending, MAX_ARRAYS_BYTES - LOAD_ALLOWANCE - json_claim)
        _check_loadable(pipeline)
        pipeline.set_params(
            features__n_jobs=None, classifier__n_jobs=None
        )  # the file never decides how many processes run
        _check_works(pipeline)
        _check_card(card, [str(label) for label in pipeline.classes_])
    except _BAD_MODEL_ERRORS as err:
        raise QismError(_cannot_use(directory, spec, err)) from None
    return Model(pipeline, card)
