"""qism: topic classifiers for Arabic news, from labeled corpora to labels on the command line."""

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

__all__ = [
    "Document", "LabelMap", "LabelOptions", "LinearClassifier", "Model", "QismError", "ReadOptions", "TextCleaner",
    "TfidfFeaturizer", "TrainConfig", "build_pipeline", "clean_text", "evaluate", "label_documents", "load_model",
    "load_recipe", "plan_training", "read_source", "read_sources", "score", "train", "train_and_save",
]
