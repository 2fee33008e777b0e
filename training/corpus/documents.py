"""What every reader yields: a `Document`, with what its record says and why it may have no text."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ..errors import QismError

#: The `problem` of a file that holds binary data (an image renamed .txt): passed on without text.
BINARY_FILE = "binary file"
#: The `problem` of a label folder with no articles, passed on so the training card can name it.
EMPTY_LABEL_FOLDER = "empty label folder"
#: The `problem` of a link in a corpus folder to a file or folder outside it (a system file must not
#: end up in a model or a report): passed on without text, so it is counted and gets a record.
OUTSIDE_CORPUS = "outside corpus"


@dataclass(frozen=True, slots=True)
class Document:
    text: str
    label: str | None = None
    id: str | None = None
    #: Where the document came from: the outlet its record names, else the file it was read from.
    outlet: str | None = None
    #: Why the entry has no text to use (`BINARY_FILE`, `EMPTY_LABEL_FOLDER`), so that training can
    #: count it and prediction can still give it a record.
    problem: str | None = None
    #: The input columns its record carries to the output (`ReadOptions.keep_columns`), as (name, value).
    fields: tuple[tuple[str, str], ...] = ()
    #: Every label of a record that gives a list of them (a JSON list, a cell holding the label
    #: separator, several fastText labels), each once, in order; `label` is the first. Empty for one label.
    labels: tuple[str, ...] = ()
    #: A short form of the article read just before it (`columns.SHORT_FORMS`), None for an article.
    part: str | None = None


#: UTF-16 halves that JSON escapes (`\\ud800`) can carry alone: no character, and no file takes them.
_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(text: str) -> str:
    """Put U+FFFD in place of lone surrogates (from JSON escapes, or command-line bytes that are
    not UTF-8), which cannot be hashed, written or printed."""
    return _LONE_SURROGATE_RE.sub("\ufffd", text)


def without_lone_surrogates(doc: Document) -> Document:
    texts = {field.name: getattr(doc, field.name) for field in dataclasses.fields(doc)}
    texts["fields"] = tuple((name, replace_lone_surrogates(value)) for name, value in doc.fields)
    texts["labels"] = tuple(map(replace_lone_surrogates, doc.labels))
    return Document(
        **{name: replace_lone_surrogates(value) if isinstance(value, str) else value for name, value in texts.items()}
    )


def label_list(values: list, where: str, separator: str) -> tuple[str, ...]:
    """The labels a record lists, each once and in order (numbers as text, empty names left out).

    A name holding the label separator is refused: written to a CSV cell, it would read back as two.
    """
    labels = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):  # numbered classes
            value = str(value)
        if not isinstance(value, str):
            raise QismError(f"{where}: the label {value!r} is not text; a label list holds names or numbers")
        if separator in value:
            raise QismError(
                f"{where}: the label {value!r} holds the label separator {separator!r}; rename the label, "
                "or choose another separator with --label-separator"
            )
        if value.strip():
            labels.append(value)
    return tuple(dict.fromkeys(labels))


def label_key(label: str) -> str:
    """What makes two label spellings one label: the same words, whatever their case and spacing."""
    return " ".join(label.split()).casefold()
