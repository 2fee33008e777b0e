"""The exceptions the CLI turns into one line (mistakes a user can fix, a Ctrl-C that kept work),
and how text from users' files reaches a terminal."""

from __future__ import annotations

import re


class QismError(Exception):
    """A problem with the user's input, options or files, with a message that says what to do."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C after part of the work was kept; the message says what was kept and how to go on."""


#: What a terminal would act on instead of showing: C0 and C1 controls (ESC starts colour and
#: OSC sequences, CR and LF break lines, TAB jumps columns, BEL rings), DEL, line and paragraph
#: separators, and the bidi embeddings, overrides and isolates that would reorder the rest of a line.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable_json(text: str) -> str:
    """JSON text with the characters a terminal would act on (DEL, C1 controls, line and paragraph
    separators, bidi controls, which JSON leaves raw in strings) as `\\uXXXX` escapes: the same JSON
    to a program, text that shows as itself on a terminal; the line breaks of its indentation stay."""
    return _CONTROL_RE.sub(lambda m: m.group() if m.group() == "\n" else f"\\u{ord(m.group()):04x}", text)


def printable(text: str) -> str:
    """`text` with its control characters written as escapes (`\\x1b`, `\\n`, `\\u202e`), so an id,
    a label or a message that quotes a file's data shows as itself, on one line."""
    return _CONTROL_RE.sub(lambda match: repr(match.group())[1:-1], text)


def require_extra(module: str, extra: str):
    """Import an optional dependency, or stop with one line naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise QismError(f"this needs the {module.split('.')[0]} package: pip install 'qism[{extra}]'") from None


#: Characters that Markdown (CommonMark with GitHub's tables, strikethrough and math) reads as
#: markup: written after a backslash, they show as themselves. A run of `_` inside a word
#: (`arab_affairs`) is never emphasis, so it is left as it is.
_MARKDOWN_MARKUP_RE = re.compile(r"[\\`*\[\]|~!#$]|_+")
#: Characters that start HTML (tags, entities, attribute values), which Markdown passes through raw.
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def markdown_text(text: str) -> str:
    """`text` (a label, an outlet, a path) as Markdown that shows it as itself, in running text or
    a table cell: control characters escaped as `printable` does, markup characters after a
    backslash, and HTML's `&`, `<`, `>` and `"` as entities, so nothing in it renders as a link,
    a tag, a script or a cell of its own."""
    shown = printable(text)

    def escape(match: re.Match) -> str:
        start, end = match.span()
        inside_a_word = match.group()[0] == "_" and start > 0 and end < len(shown)
        if inside_a_word and shown[start - 1].isalnum() and shown[end].isalnum():
            return match.group()
        return "".join("\\" + char for char in match.group())

    return without_html(_MARKDOWN_MARKUP_RE.sub(escape, shown))


def without_html(markdown: str) -> str:
    """Markdown written by a person (a recipe's notes), kept as Markdown, with HTML's `&`, `<`, `>`
    and `"` as entities and control characters escaped, so it holds no tag or script."""
    return re.sub('[&<>"]', lambda match: _HTML_ENTITIES[match.group()], printable(markdown))


def code_fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in `text`, so `text` cannot end it."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    return "`" * max(3, longest + 1)
