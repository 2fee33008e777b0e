"""Parquet files, a batch of rows at a time, by the one column policy of `columns`. Text stored as
bytes (`binary`) is decoded like a file's; a text or label column of another type, and a file that
is empty, cut short or not Parquet at all, are refused in one line. pyarrow is the extra `qism[parquet]`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..config import ReadOptions
from ..errors import QismError, require_extra
from .columns import Columns, record_document, with_short_forms
from .decoding import decode
from .documents import Document
from .registry import reader

#: Rows read at a time: memory stays bounded whatever the file's size.
BATCH_ROWS = 2000


def _is_text(pa, kind) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or _is_bytes(pa, kind)


def _is_bytes(pa, kind) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _check_types(path: Path, schema, columns: Columns) -> None:
    """Refuse a text column that holds no text, or a label column that holds neither names nor lists of them."""
    pa = require_extra("pyarrow", "parquet")
    text = schema.field(columns.text).type
    if not _is_text(pa, text):
        raise QismError(
            f"{path}: the text column {columns.text!r} holds {text}, not text; name the text column with --text-column"
        )
    if columns.label:
        label = schema.field(columns.label).type
        listed = label.value_type if pa.types.is_list(label) or pa.types.is_large_list(label) else label
        if not (_is_text(pa, listed) or pa.types.is_integer(listed)):
            raise QismError(
                f"{path}: the label column {columns.label!r} holds {label}, not label names; "
                "name the label column with --label-column"
            )


def _decoded(value, where: str, options: ReadOptions):
    """Bytes as text (guessed or named encoding), lists of them item by item, anything else as it is."""
    if isinstance(value, bytes):
        return decode(value, where, options.encoding, options.errors)
    if isinstance(value, list):
        return [_decoded(item, where, options) for item in value]
    return value


def _open(path: Path):
    pq = require_extra("pyarrow.parquet", "parquet")
    pa = require_extra("pyarrow", "parquet")
    try:
        return pq.ParquetFile(path), (pa.ArrowException, OSError, ValueError)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise QismError(f"{path}: not a Parquet file that can be read ({err}); it may be empty or cut short") from None


@reader("parquet", (".parquet",), columns=True, data=True)
def read_parquet(path: Path, options: ReadOptions) -> Iterator[Document]:
    parquet, damaged = _open(path)
    schema = parquet.schema_arrow
    columns = Columns.of(schema.names, options, str(path))
    _check_types(path, schema, columns)
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns.used):
            rows = batch.to_pydict()
            for i in range(batch.num_rows):
                row += 1
                where = f"{path}: row {row}"
                values = {name: _decoded(rows[name][i], where, options) for name in rows}
                yield from with_short_forms(
                    record_document(values, columns, options, where, path.name), values, columns, options
                )
    except damaged as err:
        raise QismError(f"{path}: row {row + 1}: damaged Parquet data ({err})") from None
