"""Bytes to text, defensively: the encoding guessed or named, a bad byte named by its line and
offset, binary data known, and every read bounded (see `limits`)."""

from __future__ import annotations

import codecs
import gzip
import io
import re
from collections.abc import Iterator
from pathlib import Path

from ..config import ReadOptions
from ..errors import QismError
from . import limits

BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


_UTF8_REPLACEMENT = "\ufffd".encode()


#: Bytes are in another encoding (Windows-1256) when valid non-ASCII UTF-8 characters are at most
#: this share of the sequences that are not UTF-8 (chance pairs: 0.6% in Windows-1256 news text);
#: with more, they are UTF-8 with damage or with lines in another encoding, named by line.
_CHANCE_UTF8_SHARE = 0.1


def checked_encoding(encoding: str) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise QismError(f"unknown encoding {encoding!r}") from None
    return encoding


def guess_encoding(data: bytes) -> str:
    """A BOM's encoding, else UTF-8 unless almost nothing non-ASCII in it is UTF-8, else Windows-1256.

    Bad bytes in UTF-8 text, even a whole line in another encoding, are to name (or replace), not a
    sign of another encoding; decoding such a file as Windows-1256 would turn its UTF-8 into nonsense.
    """
    for bom, codec in BOMS:
        if data.startswith(bom):
            return codec
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as err:
        if err.reason == "unexpected end of data":  # only the last character is cut
            return "utf-8"
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd") - data.count(_UTF8_REPLACEMENT)
    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - bad
    return "cp1256" if non_ascii <= _CHANCE_UTF8_SHARE * bad else "utf-8"


def undecodable(name: str, encoding: str, offset: int) -> str:
    return (
        f"{name}: not valid {encoding} at byte {offset:,}; "
        "name the encoding with --encoding, or use --errors replace to put U+FFFD in place of bad bytes"
    )


def is_utf8(line: bytes) -> bool:
    """Whether a line read as Windows-1256 is really UTF-8 (no line of Windows-1256 news text is)."""
    if line.isascii():
        return False
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def mixed_encodings(name: str) -> str:
    return (
        f"{name}: UTF-8 in a file read as windows-1256 (the encoding of its start); a file must be in one "
        "encoding: convert it to UTF-8 (iconv -f cp1256 -t utf-8 on its Windows-1256 part), or name one with --encoding"
    )


def decode(data: bytes, name: str, encoding: str | None = None, errors: str = "strict") -> str:
    """Bytes to text in the named encoding, else the guessed one (see `guess_encoding`).

    `errors="replace"` puts U+FFFD in place of undecodable bytes; otherwise they stop reading with
    a message naming `name`, the line and the byte's offset. A guessed Windows-1256 text with a
    UTF-8 line is refused, naming the line.
    """
    if encoding:
        encoding = checked_encoding(encoding)
    else:
        encoding = guess_encoding(data)
        if encoding == "cp1256":
            mixed = next((number for number, line in enumerate(data.split(b"\n"), 1) if is_utf8(line)), None)
            if mixed:
                raise QismError(mixed_encodings(f"{name}: line {mixed}"))
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise QismError(undecodable(f"{name}: line {line}", encoding, err.start)) from None


#: C0 control bytes other than tab, line breaks, form feed and escape: rare in text, common in binary.
_CONTROL_BYTES_RE = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


_BINARY_SNIFF_BYTES = 8192


_BINARY_CONTROL_SHARE = 0.05


def looks_binary(head: bytes) -> bool:
    """An image, archive or other binary data renamed .txt: NUL bytes among many control bytes.

    A stray NUL in a text does not make it binary (the cleaner removes it); UTF-16, full of NULs,
    is known by its BOM.
    """
    sample = head[:_BINARY_SNIFF_BYTES]
    if b"\0" not in sample or sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    controls = len(sample) - len(_CONTROL_BYTES_RE.sub(b"", sample))
    return controls > _BINARY_CONTROL_SHARE * len(sample)


def too_big(name: str, size: int | None = None) -> str:
    return (
        f"{name}: {'' if size is None else f'{size:,} bytes, '}more than the {limits.MAX_FILE_BYTES:,} qism reads "
        "as one article; split it into articles"
    )


def bounded_bytes(handle, name: str) -> bytes:
    """All of a stream, refused past one article's limit (a pipe or FIFO has no size to check first)."""
    data = handle.read(limits.MAX_FILE_BYTES + 1)
    if len(data) > limits.MAX_FILE_BYTES:
        raise QismError(too_big(name))
    return data


#: Bytes read at a time from a streamed file; the first block also decides its encoding.
_BLOCK_BYTES = 1 << 16


_LINE_END_RE = re.compile("\r\n|\r|\n")


def text_lines(path: Path, options: ReadOptions) -> Iterator[str]:
    """The lines of a (possibly gzipped) text file: see `stream_lines`. A gzip file may unpack to
    at most `limits.MAX_ARCHIVE_BYTES`."""
    packed = path.name.lower().endswith(".gz")
    with (gzip.open if packed else open)(path, "rb") as handle:
        yield from stream_lines(handle, str(path), options, limits.MAX_ARCHIVE_BYTES if packed else None)


def stream_lines(handle, name: str, options: ReadOptions, max_bytes: int | None = None) -> Iterator[str]:
    """The lines of a byte stream with their line ends (`\n`, `\r\n` or `\r`), decoded as they stream
    in the named encoding or the one guessed from the first block.

    The stream is read once, from its start to its end, so a pipe, a FIFO or standard input loses
    nothing. Binary data is refused; so are an undecodable byte (named by line and offset), a UTF-8
    line in a file guessed to be Windows-1256, a line over `limits.MAX_FILE_BYTES` characters and a stream
    over `max_bytes`, each naming the line.
    """
    block = handle.read(_BLOCK_BYTES)
    if looks_binary(block):
        raise QismError(f"{name}: binary data, not text; check that this is the file you meant")
    encoding = checked_encoding(options.encoding) if options.encoding else guess_encoding(block)
    check_utf8 = not options.encoding and encoding == "cp1256"
    decoder = codecs.getincrementaldecoder(encoding)(options.errors)
    offset, number = 0, 1  # bytes before `block`; the line being read
    pending: list[str] = []  # the start of that line, from earlier blocks
    pending_chars = 0
    carried = ""  # a final \r, which a \n at the start of the next block may complete
    while True:
        final = not block
        state = decoder.getstate()
        try:
            text = carried + decoder.decode(block, final)
        except UnicodeDecodeError as err:
            before = max(0, err.start - len(state[0]))  # err.start counts the bytes the decoder held
            probe = codecs.getincrementaldecoder(encoding)("replace")
            probe.setstate(state)
            line = number + len(_LINE_END_RE.findall(carried + probe.decode(block[:before])))
            raise QismError(undecodable(f"{name}: line {line}", encoding, offset + err.start - len(state[0]))) from None
        carried = "\r" if text.endswith("\r") and not final else ""
        text = text[:-1] if carried else text
        end = max(text.rfind("\n"), text.rfind("\r")) + 1
        if end:
            complete = "".join([*pending, text[:end]])
            pending, pending_chars = [text[end:]], len(text) - end
            for line in io.StringIO(complete, newline=""):
                if len(line) > limits.MAX_FILE_BYTES:
                    raise QismError(too_long(name, number))
                if check_utf8 and is_utf8(line.encode(encoding)):
                    raise QismError(mixed_encodings(f"{name}: line {number}"))
                yield line
                number += 1
        else:
            pending.append(text)
            pending_chars += len(text)
        if pending_chars > limits.MAX_FILE_BYTES:
            raise QismError(too_long(name, number))
        if final:
            last = "".join(pending)
            if last:
                if check_utf8 and is_utf8(last.encode(encoding)):
                    raise QismError(mixed_encodings(f"{name}: line {number}"))
                yield last
            return
        offset += len(block)
        if max_bytes is not None and offset > max_bytes:
            raise QismError(
                f"{name}: unpacks to more than {max_bytes:,} bytes, more than qism reads from one "
                "archive (a gzip bomb?); unpack it yourself and give the file"
            )
        block = handle.read(_BLOCK_BYTES)


def too_long(name: str, number: int) -> str:
    return (
        f"{name}: line {number}: more than the {limits.MAX_FILE_BYTES:,} characters qism reads as one article; "
        "split it into articles"
    )
