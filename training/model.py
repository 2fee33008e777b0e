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
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from .card import card_markdown, package_versions, qism_version
from .classifier import LinearClassifier
from .config import resolve_jobs
from .clean import TextCleaner
from .errors import QismError
from .explain import explain
from .features import TfidfFeaturizer
from .files import replace_folder, staging_folder

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

def _as_texts(texts: str | Iterable[str]) -> list[str]:
    """A string is one text (as fastText's `predict` takes one or a list), anything else a sequence."""
    return [texts] if isinstance(texts, str) else list(texts)


def top_labels(proba: np.ndarray, labels: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The `k` most probable labels of each row, with their probabilities, best first."""
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return [[(labels[j], float(row[j])) for j in best] for row, best in zip(proba, order)]


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

    def predict(self, texts: str | Iterable[str]) -> list[str]:
        labels = self.labels
        return [labels[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def predict_top(self, texts: str | Iterable[str], k: int = 3, threshold: float = 0.0) -> list[list[tuple[str, float]]]:
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
        """Write the model folder atomically: a complete new model, or the old one untouched."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise QismError(f"{directory}: exists and is not a folder")
        staging = staging_folder(directory)
        try:
            arrays: dict[str, np.ndarray] = {}
            spec = {"format": "qism-model", "format_version": FORMAT_VERSION, "versions": package_versions(),
                    "pipeline": _encode(self.pipeline, "", arrays)}
            (staging / PIPELINE_FILE).write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
            with open(staging / ARRAYS_FILE, "wb") as handle:
                np.savez_compressed(handle, **arrays)
            self.card["files"] = {name: _sha256(staging / name) for name in (PIPELINE_FILE, ARRAYS_FILE)}
            (staging / CARD_FILE).write_text(json.dumps(self.card, ensure_ascii=False, indent=2), encoding="utf-8")
            (staging / CARD_MARKDOWN).write_text(card_markdown(self.card), encoding="utf-8")
            replace_folder(staging, directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return directory


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
