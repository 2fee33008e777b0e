"""The saved model: a fitted pipeline, its labels and its card, in a folder that is safe to load.

A model folder holds `pipeline.json` (which of qism's own estimator classes, with what parameters),
`arrays.npz` (their fitted arrays, read with `allow_pickle=False`), `card.json` and `card.md`.
Loading builds only classes from a fixed list and reads only numbers and text: no code from the
folder runs, unlike pickle or joblib files. The card carries a SHA-256 of both files, so a truncated
or edited model is refused before use.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from .autotune import summary as autotune_summary
from .classifier import LinearClassifier
from .clean import TextCleaner
from .errors import QismError
from .files import make_like_new
from .features import TfidfFeaturizer

FORMAT_VERSION = 1
PIPELINE_FILE = "pipeline.json"
ARRAYS_FILE = "arrays.npz"
CARD_FILE = "card.json"
CARD_MARKDOWN = "card.md"

#: Where the shipped default model is: inside the installed package (a wheel maps models/default
#: there), else in the source checkout.
DEFAULT_MODEL_PLACES = (Path(__file__).parent / "default_model", Path(__file__).parent.parent / "models" / "default")


def default_model_dir() -> Path:
    """The folder of the default model `qism predict` uses when no --model is given."""
    for place in DEFAULT_MODEL_PLACES:
        if (place / CARD_FILE).is_file():
            return place
    raise QismError("no default model is installed; give --model DIR (train one with `qism train`)")


#: The only classes a model file may name.
LOADABLE = {cls.__name__: cls for cls in (Pipeline, TfidfFeaturizer, TextCleaner, LinearClassifier)}


def qism_version() -> str:
    try:
        return version("qism")
    except PackageNotFoundError:
        return "unknown"


def package_versions() -> dict[str, str]:
    import joblib
    import scipy

    return {"qism": qism_version(), "scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "joblib": joblib.__version__}


# --- pipeline <-> (JSON spec, arrays) ---------------------------------------------------------

def _encode(estimator: BaseEstimator, prefix: str, arrays: dict[str, np.ndarray]) -> dict:
    name = type(estimator).__name__
    if name not in LOADABLE:
        raise TypeError(f"{name} cannot be saved in a qism model")
    if isinstance(estimator, Pipeline):
        return {"class": name, "steps": [[step, _encode(est, f"{prefix}{step}.", arrays)] for step, est in estimator.steps]}
    params = {}
    for key, value in estimator.get_params(deep=False).items():
        if isinstance(value, BaseEstimator):
            params[key] = _encode(value, f"{prefix}{key}.", arrays)
        elif isinstance(value, tuple):
            params[key] = list(value)
        else:
            params[key] = value
    fitted = {}
    for key, value in vars(estimator).items():
        if key.endswith("_") and not key.startswith("_"):
            if isinstance(value, np.ndarray):
                arrays[prefix + key] = value
                fitted[key] = {"array": prefix + key}
            else:
                fitted[key] = value
    return {"class": name, "params": params, "fitted": fitted}


def _decode(spec: dict, arrays) -> BaseEstimator:
    if not isinstance(spec, dict):
        raise ValueError(f"expected an estimator, found {str(spec)[:40]!r}")
    cls = LOADABLE.get(spec.get("class"))
    if cls is None:
        raise QismError(f"model names a class qism does not load: {spec.get('class')!r}")
    if cls is Pipeline:
        return Pipeline([(step, _decode(sub, arrays)) for step, sub in spec["steps"]])
    unknown = sorted(set(spec["params"]) - set(cls._get_param_names()))
    if unknown:
        raise TypeError(f"{cls.__name__} has no parameter {', '.join(map(repr, unknown))}")
    params = {
        key: _decode(value, arrays) if isinstance(value, dict) else tuple(value) if isinstance(value, list) else value
        for key, value in spec["params"].items()
    }
    estimator = cls(**params)
    for key, value in spec.get("fitted", {}).items():
        if not (key.endswith("_") and key[0].isalpha()):
            raise QismError(f"model sets a non-fitted attribute {key!r}")
        setattr(estimator, key, arrays[value["array"]] if isinstance(value, dict) else value)
    return estimator


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the model --------------------------------------------------------------------------------

@dataclass
class Model:
    """A fitted pipeline (raw text in, label scores out) and its card."""

    pipeline: Pipeline
    card: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [str(label) for label in self.pipeline.classes_]

    @property
    def label_names(self) -> dict[str, str]:
        """Display names of the labels (e.g. Arabic section names), when a label map gave them."""
        return self.card.get("label_names", {})

    def predict_proba(self, texts) -> np.ndarray:
        """Calibrated probabilities, one row per text, columns in the order of `labels`."""
        return self.pipeline.predict_proba(list(texts))

    def predict(self, texts) -> list[str]:
        labels = self.labels
        return [labels[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def predict_top(self, texts, k: int = 3) -> list[list[tuple[str, float]]]:
        """The `k` most probable labels of each text with their probabilities, best first."""
        proba = self.predict_proba(texts)
        labels = self.labels
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(labels[j], float(row[j])) for j in best] for row, best in zip(proba, order)]

    def set_jobs(self, n_jobs: int | None) -> None:
        """How many processes featurize text when this model labels many articles."""
        self.pipeline.set_params(features__n_jobs=n_jobs, classifier__n_jobs=n_jobs)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the model folder atomically: a complete new model, or the old one untouched."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        make_like_new(staging)
        try:
            arrays: dict[str, np.ndarray] = {}
            spec = {"format": "qism-model", "format_version": FORMAT_VERSION, "versions": package_versions(),
                    "pipeline": _encode(self.pipeline, "", arrays)}
            (staging / PIPELINE_FILE).write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
            with open(staging / ARRAYS_FILE, "wb") as handle:
                np.savez_compressed(handle, **arrays)
            self.card["files"] = {name: _sha256(staging / name) for name in (PIPELINE_FILE, ARRAYS_FILE)}
            (staging / CARD_FILE).write_text(json.dumps(self.card, ensure_ascii=False, indent=2), encoding="utf-8")
            (staging / CARD_MARKDOWN).write_text(render_card(self.card), encoding="utf-8")
            _replace_directory(staging, directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return directory


def _replace_directory(new: Path, target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise QismError(f"{target}: exists and is not a folder")
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, retired / target.name)
        try:
            os.replace(new, target)
        except BaseException:
            os.replace(retired / target.name, target)
            raise
        finally:
            shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(new, target)


#: What a damaged, crafted or incompatible model file can raise while it is read, built and tried.
_BAD_MODEL_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError, ArithmeticError, MemoryError,
                     OSError, EOFError, RecursionError, zipfile.BadZipFile)


def _minor(version) -> str | None:
    return ".".join(str(version).split(".")[:2]) if version else None


def _cannot_use(directory: Path, spec, err: Exception) -> str:
    """Why a model cannot be used, naming the versions that saved it and the running ones when they differ."""
    saved = spec.get("versions") if isinstance(spec, dict) else None
    saved = saved if isinstance(saved, dict) else {}
    running = package_versions()
    if any(_minor(saved.get(name)) != _minor(running[name]) for name in ("qism", "scikit-learn") if saved.get(name)):
        return (f"{directory}: saved by qism {saved.get('qism')} with scikit-learn {saved.get('scikit-learn')}, it does "
                f"not work with qism {running['qism']} and scikit-learn {running['scikit-learn']} ({err}); "
                "retrain it, or install the versions it was saved with")
    return f"{directory}: cannot read the model ({err})"


def _check_works(pipeline: Pipeline) -> None:
    """Label one text, so a model whose arrays do not fit together (or do not suit this version of
    scikit-learn) fails when it is loaded, not half-way through a run."""
    proba = pipeline.predict_proba(["نص للتجربة"])
    if proba.shape != (1, len(pipeline.classes_)) or not np.isfinite(proba).all():
        raise ValueError("its arrays do not fit together")


def load_model(directory: str | os.PathLike | None = None) -> Model:
    """Load a model folder (the shipped default model when none is named), refusing one that is
    incomplete, altered, or of a newer format.

    A model saved by other versions of qism or scikit-learn loads when its arrays still work here
    (they are plain numbers); otherwise the message names both sets of versions.
    """
    directory = Path(directory) if directory is not None else default_model_dir()
    if not directory.is_dir():
        raise QismError(f"{directory}: no model folder here (train one with `qism train`)")
    missing = [name for name in (PIPELINE_FILE, ARRAYS_FILE, CARD_FILE) if not (directory / name).is_file()]
    if missing:
        raise QismError(f"{directory}: not a complete qism model (missing {', '.join(missing)})")
    spec = None
    try:
        card = json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))
        checksums = card.get("files") if isinstance(card, dict) else None
        if not isinstance(checksums, dict) or set(checksums) != {PIPELINE_FILE, ARRAYS_FILE}:
            raise QismError(f"{directory}: the card lists no checksums; the model cannot be verified")
        for name, expected in checksums.items():
            if _sha256(directory / name) != expected:
                raise QismError(f"{directory / name}: checksum does not match the card; the model is damaged or was altered")
        spec = json.loads((directory / PIPELINE_FILE).read_text(encoding="utf-8"))
        if spec.get("format") != "qism-model":
            raise QismError(f"{directory}: not a qism model")
        if spec.get("format_version") != FORMAT_VERSION:
            saved_by = spec.get("versions", {}).get("qism", "unknown")
            raise QismError(
                f"{directory}: model format {spec.get('format_version')} (saved by qism {saved_by}) "
                f"cannot be read by qism {qism_version()} (format {FORMAT_VERSION}); retrain it"
            )
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
            pipeline = _decode(spec["pipeline"], {key: arrays[key] for key in arrays.files})
        _check_works(pipeline)
    except _BAD_MODEL_ERRORS as err:
        raise QismError(_cannot_use(directory, spec, err)) from None
    return Model(pipeline, card)


# --- the card ---------------------------------------------------------------------------------

def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {count:,}" for key, count in counts.items())


def data_notes(card: dict) -> list[str]:
    """What training did with documents it could not use as they were, one sentence per kind."""
    notes = []
    if card.get("dropped"):
        notes.append(f"Dropped before training: {_counts(card['dropped'])}.")
    if card.get("repaired"):
        notes.append(f"Kept after a fix: {_counts(card['repaired'])}.")
    if card.get("flagged"):
        notes.append(f"Kept, worth a look: {_counts(card['flagged'])}.")
    if card.get("label_merges"):
        merged = ", ".join(f"{spelling!r} → {label!r}" for spelling, label in card["label_merges"].items())
        notes.append(f"Label spellings merged: {merged}.")
    if card.get("empty_label_folders"):
        notes.append(f"Label folders without articles (no such label): {', '.join(card['empty_label_folders'])}.")
    return notes


def render_card(card: dict) -> str:
    """The model card as Markdown, for people."""
    lines = [f"# qism model: {card.get('name', '')}", ""]
    lines.append(f"Created {card.get('created')} with qism {card.get('versions', {}).get('qism')}.")
    lines.append("")
    scores = card.get("scores")
    if scores:
        lines += ["## Held-out scores", "",
                  f"- documents: {scores['documents']:,}",
                  f"- accuracy: {_percent(scores['accuracy'])}%",
                  f"- macro-F1: {_percent(scores['macro_f1'])}%"]
        if "expected_calibration_error" in scores:
            lines.append(f"- expected calibration error: {scores['expected_calibration_error']:.3f}")
        lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for label, row in scores["per_label"].items():
            lines.append(f"| {label} | {_percent(row['precision'])} | {_percent(row['recall'])} | {_percent(row['f1'])} | {row['support']} |")
        matrix = scores["confusion_matrix"]
        lines += ["", "Confusion matrix (rows: true label, columns: predicted):", "",
                  "| | " + " | ".join(matrix["labels"]) + " |", "|---" * (len(matrix["labels"]) + 1) + "|"]
        for label, row in zip(matrix["labels"], matrix["rows_true_columns_predicted"]):
            lines.append(f"| **{label}** | " + " | ".join(str(v) for v in row) + " |")
        if "by_threshold" in scores:
            lines += ["", "Leaving articles scored below a threshold unlabeled (`qism predict --threshold`):", "",
                      "| threshold | coverage | accuracy |", "|---|---|---|"]
            lines += [f"| {row['threshold']:.3f} | {_percent(row['coverage'])}% | {_percent(row['accuracy'])}% |"
                      for row in scores["by_threshold"]]
        if "by_source" in scores:
            lines += ["", "Held-out scores per source (outlet, or the file a document came from):", "",
                      "| source | documents | accuracy | macro-F1 |", "|---|---|---|---|"]
            lines += [f"| {source} | {row['documents']:,} | {_percent(row['accuracy'])}% | {_percent(row['macro_f1'])}% |"
                      for source, row in scores["by_source"].items()]
    else:
        lines.append("Trained on all documents (no held-out split), so there are no held-out scores.")
    names = card.get("label_names", {})
    lines += ["", "## Labels", "", "| label | name | training documents |", "|---|---|---|"]
    lines += [f"| {label} | {names.get(label, label)} | {count:,} |" for label, count in card.get("labels", {}).items()]
    by_outlet = card.get("documents_by_outlet")
    if by_outlet and len(by_outlet) > 1:
        labels = list(card.get("labels", {}))
        lines += ["", "Documents per outlet (rows) and label (columns), before the held-out split:", "",
                  "| outlet | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        lines += [f"| {outlet} | " + " | ".join(f"{row[label]:,}" if label in row else "–" for label in labels) + " |"
                  for outlet, row in by_outlet.items()]
    lines += ["", "## Training data", "", "| source | documents | SHA-256 |", "|---|---|---|"]
    lines += [f"| {s['path']} | {s['documents']:,} | `{s['sha256'][:16]}…` |" for s in card.get("sources", [])]
    lines += [line for note in data_notes(card) for line in ("", note)]
    if "autotune" in card:
        lines += ["", "## Autotune", "", autotune_summary(card["autotune"]), "",
                  "| classifier | C | class weight | word n-grams | CV macro-F1 | seconds |", "|---|---|---|---|---|---|"]
        lines += [f"| {t['config']['classifier']} | {t['config']['C']:g} | {t['config']['class_weight'] or 'none'} | "
                  f"{'-'.join(map(str, t['config']['word_ngrams']))} | {t['cv_macro_f1']:.4f} | {t['seconds']} |"
                  for t in card["autotune"]["trials"]]
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in card["notes"]]
    lines += ["", "## Configuration", "", "```json", json.dumps(card.get("config", {}), ensure_ascii=False, indent=2), "```", ""]
    return "\n".join(lines)
