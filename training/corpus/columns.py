"""One column policy for every format with named columns (a CSV or TSV header, the keys of a JSON
Lines record, a Parquet schema): where the text, label, id, title and outlet are, by the names a user
gives (`--text-column`, `--label-column`, `--id-column`, `--keep-columns`) or else the first of the
usual names there, in any case; and what a record's values become in a `Document`."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..config import ReadOptions
from ..errors import QismError
from .documents import Document, label_list

#: Arabic names last: نص (text), القسم (section), رابط (link, an article's id when there is no id), عنوان (title).
TEXT_COLUMNS = ("text", "content", "body", "article", "نص")
LABEL_COLUMNS = ("label", "labels", "class", "category", "section", "topic", "القسم")
ID_COLUMNS = ("id", "doc_id", "article_id", "guid", "رابط")
TITLE_COLUMNS = ("title", "headline", "عنوان")
OUTLET_COLUMNS = ("source", "outlet")


def _find(names: Sequence[str], wanted: str | None, defaults: tuple[str, ...]) -> str | None:
    """The name in `names` of the column `wanted`, else of the first of `defaults` there (any case)."""
    lowered = {}
    for name in names:
        lowered.setdefault(name.strip().lower(), name)
    return next((lowered[c.lower()] for c in ((wanted,) if wanted else defaults) if c.lower() in lowered), None)


@dataclass(frozen=True)
class Columns:
    """The names of a source's columns that hold each part of a document (None: the source has none)."""

    text: str
    label: str | None
    id: str | None
    title: str | None
    outlet: str | None
    kept: tuple[str, ...]

    @classmethod
    def of(cls, names: Sequence[str], options: ReadOptions, where: str, kind: str = "column") -> Columns:
        """Find the columns in `names` (a header, the keys of the first record, a schema); a column the
        user named, the text and (when labels are required) the label must be there. `kind` is what
        the source calls a column, for messages."""

        def find(what: str, wanted: str | None, defaults: tuple[str, ...], required: bool, option: str) -> str | None:
            found = _find(names, wanted, defaults)
            if found is None and (required or wanted):
                missing = (
                    f"{kind} {wanted!r} ({option})"
                    if wanted
                    else f"{what} {kind} (looked for {', '.join(defaults)}; name it with {option})"
                )
                raise QismError(f"{where}: no {missing}; the {kind}s are: {', '.join(names)}")
            return found

        return cls(
            text=find("text", options.text_column, TEXT_COLUMNS, True, "--text-column"),
            label=find("label", options.label_column, LABEL_COLUMNS, options.require_labels, "--label-column"),
            id=find("id", options.id_column, ID_COLUMNS, False, "--id-column"),
            title=find("title", None, TITLE_COLUMNS, False, ""),
            outlet=find("outlet", None, OUTLET_COLUMNS, False, ""),
            kept=tuple(find("kept", name, (), True, "--keep-columns") for name in options.keep_columns),
        )

    @property
    def used(self) -> list[str]:
        """Every column a document is made of, each once."""
        return list(
            dict.fromkeys(n for n in (self.text, self.label, self.id, self.title, self.outlet, *self.kept) if n)
        )


def field_value(value) -> str:
    """A value as the text of an output field: strings as they are, other values as JSON."""
    return value if isinstance(value, str) else "" if value is None else json.dumps(value, ensure_ascii=False)


def record_labels(value, where: str, separator: str) -> tuple[str | None, tuple[str, ...]]:
    """A record's label and, when it gives a list (a JSON or Parquet list, or text holding the
    label separator: `security|arab affairs`), its labels; a number is a numbered class."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        if separator not in value:
            return value, ()
        value = [piece.strip() for piece in value.split(separator)]
    if isinstance(value, (list, tuple)):
        labels = label_list(value, where, separator)
        return (labels[0] if labels else None), labels
    return None, ()


#: The documents `ReadOptions.titles = "also"` adds after an article: its title alone, and its title
#: with its lead sentence.
SHORT_FORMS = ("title", "title_lead")
#: A lead sentence ends at the first sentence mark (not a decimal point) after this many words, or
#: after `_MAX_LEAD_SENTENCE_WORDS` words.
_MIN_LEAD_SENTENCE_WORDS = 8
_MAX_LEAD_SENTENCE_WORDS = 40
_SENTENCE_END_RE = re.compile(r"[.!?؟](?!\d|نت|كوم)")  # not a decimal point, not `العربية.نت`


def lead_sentence(body: str) -> str:
    """An article's first sentence, also when the next one is glued to it (`الدستوري.وكانت`)."""
    words = body.split()[:_MAX_LEAD_SENTENCE_WORDS]
    for i in range(_MIN_LEAD_SENTENCE_WORDS - 1, len(words)):
        end = _SENTENCE_END_RE.search(words[i])
        if end:
            return " ".join(words[:i] + [words[i][: end.end()]])
    return " ".join(words)


def with_short_forms(article: Document, values: Mapping, columns: Columns, options: ReadOptions) -> Iterator[Document]:
    """The article, and with `titles = "also"` its short forms (same label, id and outlet): its
    title alone and its title with the lead sentence of its text."""
    yield article
    title = values.get(columns.title) if columns.title else None
    if options.titles == "also" and isinstance(title, str) and title.strip():
        body = values.get(columns.text)
        yield dataclasses.replace(article, text=title, part="title", fields=())
        yield dataclasses.replace(article, text=f"{title}\n{lead_sentence(body)}", part="title_lead", fields=())


def record_document(values: Mapping, columns: Columns, options: ReadOptions, where: str, outlet: str) -> Document:
    """A document from one record's values by column name; `outlet` is the file's, for records that
    name none. A record without its text, or (labels required) without a label, is refused."""
    text = values.get(columns.text)
    if not isinstance(text, str):
        raise QismError(f"{where}: no {columns.text!r} text in the record; name the key with --text-column")
    raw = values.get(columns.label) if columns.label else None
    if raw is None and not options.label_column:  # sparse records: one says `label`, another `labels`
        raw = next((values[name] for name in LABEL_COLUMNS if values.get(name) is not None), None)
    if options.require_labels and (isinstance(raw, bool) or not isinstance(raw, (str, int, list, tuple))):
        raise QismError(f"{where}: no {columns.label or 'label'!r} in the record; name the key with --label-column")
    label, labels = record_labels(raw, where, options.label_separator)
    title = values.get(columns.title) if columns.title else None
    named = values.get(columns.outlet) if columns.outlet else None
    doc_id = values.get(columns.id) if columns.id else None
    return Document(
        text=f"{title}\n{text}" if isinstance(title, str) and title else text,
        label=label,
        id=field_value(doc_id) if doc_id is not None else None,
        outlet=str(named) if named else outlet,
        fields=tuple((given, field_value(values.get(name))) for given, name in zip(options.keep_columns, columns.kept)),
        labels=labels,
    )
