"""One column policy for every format with named columns (a CSV or TSV header, the keys of a JSON
Lines record, a Parquet schema): where the text, label, id, title and outlet are, by the names a user
gives (`--text-column`, `--label-column`, `--id-column`, `--keep-columns`) or else the first of the
usual names there, in any case; and what a record's values become in a `Document`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
