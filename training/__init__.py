"""qism: topic classifiers for Arabic news, from labeled corpora to labels on the command line."""

from .clean import TextCleaner, clean_text
from .corpus import Document, ReadOptions, read_source, read_sources
from .errors import QismError
from .evaluation import evaluate, score
from .features import TfidfFeaturizer
from .classifier import LinearClassifier
from .model import Model, load_model
from .trainer import TrainConfig, train

__all__ = [
    "Document", "LinearClassifier", "Model", "QismError", "ReadOptions", "TextCleaner", "TfidfFeaturizer",
    "TrainConfig", "clean_text", "evaluate", "load_model", "read_source", "read_sources", "score", "train",
]
