"""qism: topic classifiers for Arabic news, from labeled corpora to labels on the command line.

The library is `import qism` (its source is the repository's `training/` folder). The names below are
imported when first used, so `qism --help` and `qism --version` answer without loading scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: Where each public name lives.
_HOMES = {
    "LinearClassifier": "classifier",
    "TextCleaner": "clean",
    "clean_text": "clean",
    "LabelOptions": "config",
    "ReadOptions": "config",
    "TrainConfig": "config",
    "Document": "corpus",
    "read_source": "corpus",
    "read_sources": "corpus",
    "QismError": "errors",
    "evaluate": "evaluation",
    "TfidfFeaturizer": "features",
    "Model": "model",
    "load_model": "model",
    "label_documents": "predict",
    "LabelMap": "recipe",
    "load_recipe": "recipe",
    "plan_training": "recipe",
    "score": "scores",
    "build_pipeline": "trainer",
    "train": "trainer",
    "train_and_save": "trainer",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'qism' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .classifier import LinearClassifier
    from .clean import TextCleaner, clean_text
    from .config import LabelOptions, ReadOptions, TrainConfig
    from .corpus import Document, read_source, read_sources
    from .errors import QismError
    from .evaluation import evaluate
    from .features import TfidfFeaturizer
    from .model import Model, load_model
    from .predict import label_documents
    from .recipe import LabelMap, load_recipe, plan_training
    from .scores import score
    from .trainer import build_pipeline, train, train_and_save
