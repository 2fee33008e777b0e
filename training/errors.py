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
