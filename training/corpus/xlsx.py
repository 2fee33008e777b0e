"""Excel workbooks (.xlsx): the first sheet, its first row the header, by the one column policy of
`columns`, so a sheet `qism select` wrote goes back into `qism train --base` as it is. openpyxl is the
extra `qism[xlsx]`; an empty cell is empty text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..config import ReadOptions
from ..errors import QismError, require_extra
from .columns import Columns, record_document
from .documents import Document
from .registry import reader


@reader("xlsx", (".xlsx",), columns=True, data=True)
def read_xlsx(path: Path, options: ReadOptions) -> Iterator[Document]:
    openpyxl = require_extra("openpyxl", "xlsx")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for a damaged or foreign file
        raise QismError(f"{path}: not a readable .xlsx workbook ({type(err).__name__})") from None
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = ["" if cell is None else str(cell) for cell in next(rows, ())]
        if not any(header):
            raise QismError(f"{path}: empty sheet, expected a header row")
        columns = Columns.of(header, options, str(path))
        for number, row in enumerate(rows, 2):
            cells = ["" if cell is None else str(cell) for cell in row]
            if any(cells):
                values = dict(zip(header, cells))
                yield record_document(values, columns, options, f"{path}: row {number}", path.name)
    finally:
        book.close()
