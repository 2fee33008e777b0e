"""Arabic text normalization and news-page boilerplate removal.

One small function per step, tables and regexes compiled once at import (the CAMeL Tools style).
`clean_text` applies the default chain; `TextCleaner` holds a chosen set of switches so the same
cleaning is saved with a model and applied again when it labels new articles.

Every step is idempotent and the chain is ordered so that no step creates work for an earlier one:
character normalization first, then removal of web residue, then line-level boilerplate.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from array import array
from collections.abc import Iterable

from sklearn.base import BaseEstimator

try:  # compiled twins of CharMap's loop, the line split and the punctuation spacing (setup.py builds them)
    from . import _native
except ImportError:
    _native = None

# --- character tables -------------------------------------------------------------------------

#: Harakat, tanween, shadda, sukun, superscript alef, Quranic annotation marks.
DIACRITICS = "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
TATWEEL = "\u0640"
#: Zero-width and bidi control characters pasted in from web pages, and stray C0 controls.
INVISIBLES = "\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\u061c\x00-\x08\x0b\x0c\x0e-\x1f\x7f"

_ALEF_VARIANTS = "أإآٱٲٳ"
_DIGITS = "٠١٢٣٤٥٦٧٨٩" + "۰۱۲۳۴۵۶۷۸۹"


#: Letters of the Arabic script (Arabic, Persian and Urdu additions, presentation forms).
ARABIC_LETTERS = "\u0620-\u064a\u066e-\u06d3\u06fa-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefc"
ARABIC_LETTER_RE = re.compile(f"[{ARABIC_LETTERS}]")
#: Two Arabic letters in a row: the least a text needs to hold an Arabic word (diacritics between them
#: do not count as a break).
ARABIC_WORD_RE = re.compile(f"[{ARABIC_LETTERS}][{DIACRITICS}{TATWEEL}]*[{ARABIC_LETTERS}]")


def has_arabic_word(text: str) -> bool:
    """Whether the text holds at least one Arabic word (not only Latin letters, digits or symbols)."""
    return ARABIC_WORD_RE.search(text) is not None


#: Each character-level step as (characters to delete, {character: replacement}).
DIACRITICS_MAP = (DIACRITICS, {})
TATWEEL_MAP = (TATWEEL, {})
INVISIBLES_MAP = (INVISIBLES, {})
ALEF_MAP = ("", dict.fromkeys(_ALEF_VARIANTS, "ا"))
#: Alef maqsura, and the Persian yeh and kaf that Arabic pages often carry.
YEH_MAP = ("", {"ى": "ي", "ی": "ي", "ک": "ك"})
TEH_MARBUTA_MAP = ("", {"ة": "ه"})
DIGITS_MAP = ("", {d: str(i % 10) for i, d in enumerate(_DIGITS)})


#: Code points of the Basic Multilingual Plane, the range a compiled character table covers.
_BMP = 0x10000
#: The table that changes nothing, copied for each `CharMap` (a copy takes microseconds, a new table milliseconds).
_IDENTITY_TABLE = array("i", range(_BMP)) if _native is not None else None


def class_characters(spec: str) -> list[str]:
    """The characters of a regex character class's body made of characters and `a-b` ranges."""
    chars, i = [], 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            chars += map(chr, range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            chars.append(spec[i])
            i += 1
    return chars


def char_table(deletions: str, replacements: list[tuple[str, str]]) -> array | None:
    """What each BMP character becomes under `CharMap` (-1: deleted), for the compiled loop; None
    when a step is not one character for one within the BMP, which only the regex path does."""
    deleted = class_characters(deletions)
    singles = all(len(old) == len(new) == 1 for old, new in replacements)
    if not singles or any(ord(char) >= _BMP for char in [*deleted, *(old for old, _ in replacements)]):
        return None
    table = _IDENTITY_TABLE[:]
    for old, _ in replacements:  # the replacements one after the other, as `str.replace` applies them
        new = old
        for before, after in replacements:
            new = after if new == before else new
        table[ord(old)] = ord(new)
    for char in deleted:  # deletions come first, so a deleted character is never replaced
        table[ord(char)] = -1
    return table


class CharMap:
    """Several character-level steps merged into one: a regex for deletions, then `str.replace`
    per mapped character present (both far faster than `str.translate` on non-Latin text), or
    both in one compiled pass through a table of what each character becomes."""

    def __init__(self, *maps: tuple[str, dict[str, str]]):
        deletions = "".join(spec for spec, _ in maps)
        self._delete = re.compile(f"[{deletions}]") if deletions else None
        self._replace = [pair for _, mapping in maps for pair in mapping.items()]
        self._deletions = deletions
        self._table = None  # made on the first call: most steps made at import never run alone

    def __call__(self, text: str) -> str:
        if _native is not None:
            if self._table is None:
                self._table = char_table(self._deletions, self._replace) or False
            if self._table:
                return _native.char_map(text, self._table)
        if self._delete is not None:
            text = self._delete.sub("", text)
        for old, new in self._replace:
            if old in text:
                text = text.replace(old, new)
        return text


def _char_step(char_map: tuple[str, dict[str, str]], doc: str) -> CharMap:
    step = CharMap(char_map)
    step.__doc__ = doc
    return step


remove_diacritics = _char_step(
    DIACRITICS_MAP, "Drop tashkeel: most news text has none, so marked words would otherwise be new words."
)
remove_tatweel = _char_step(TATWEEL_MAP, "Drop the kashida used to stretch words (كـــبير -> كبير).")
normalize_alef = _char_step(
    ALEF_MAP, "Hamzated and wasla alef forms (أ إ آ ٱ) to bare alef, as writers use them inconsistently."
)
normalize_yeh = _char_step(
    YEH_MAP, "Alef maqsura ى to yeh ي (and Persian yeh/kaf to Arabic), a common final-letter variation."
)
normalize_teh_marbuta = _char_step(TEH_MARBUTA_MAP, "Teh marbuta ة to heh ه, often interchanged at word ends.")
normalize_digits = _char_step(DIGITS_MAP, "Arabic-Indic (٣) and Persian (۳) digits to ASCII digits.")
remove_invisibles = _char_step(INVISIBLES_MAP, "Zero-width, bidi-control and C0 control characters (NUL included).")


def normalize_unicode(text: str) -> str:
    """NFKC: presentation forms and ligatures (ﻻ, ﷲ) back to plain letters."""
    if "\xa0" in text:  # the no-break space, by far the commonest reason a page is not NFKC
        text = text.replace("\xa0", " ")
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


# --- web residue ------------------------------------------------------------------------------

# Every alternative starts with a character, the look back at what precedes a `#` coming after it: a
# pattern that starts with a look-behind is tried at every position, one that starts with a character
# only where that character is (five times faster on news text, the same matches).
_HTML_RE = re.compile(
    r"</?[A-Za-z!][^<>]{0,500}>|&(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,10});|#(?<![\w#&]#)\d{2,7};"
)
_URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
# A pattern that starts with a run (`[\w.+-]+`, `#+`) may start only where its run starts: tried from
# every character of a long run that never matches, the run is scanned again from each, which is
# time quadratic in its length (33 s for a 200 KB article).
_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: The same, for where the last match ended: a local part may start right after a domain (`a@b.c+d@e.f`).
_EMAIL_AT_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MENTION_RE = re.compile(r"(?:^|(?<=\s))(?:RT\s+)?(?:@\w+:?)+")  # "@a@b" whole, or "@b" is left
_HASHTAG_RE = re.compile(r"#(?<!##)#*(\w+)")  # all the #s, so "##x" does not leave "#x" behind
# the mark first, then a look back at the letter before it: far faster to scan for than a lookbehind first
_GLUED_PUNCT_RE = re.compile(r"([.!?؟،؛:])(?<=[\u0621-\u064a][.!?؟،؛:])(?=[\u0621-\u064a])")


# Each regex runs only when the character it needs is in the text: most articles have none.


def remove_html(text: str) -> str:
    """HTML tags and entities, including bare ones that lost their ampersand (`#215;`)."""
    return _HTML_RE.sub(" ", text) if ("<" in text or "&" in text or "#" in text) else text


def remove_urls(text: str) -> str:
    return _URL_RE.sub(" ", text) if ("//" in text or "www." in text or "WWW." in text) else text


def remove_emails(text: str) -> str:
    """E-mail addresses, each where a scan from the left finds it (as `[\\w.+-]+@...` would, in linear time)."""
    if "@" not in text:
        return text
    pieces, end = [], 0
    while match := (end and _EMAIL_AT_RE.match(text, end)) or _EMAIL_RE.search(text, end):
        pieces += (text[end : match.start()], " ")
        end = match.end()
    return "".join([*pieces, text[end:]]) if pieces else text


def remove_mentions(text: str) -> str:
    """@user handles and retweet prefixes (`RT @user:`) of social-media posts."""
    return _MENTION_RE.sub(" ", text) if "@" in text else text


def split_hashtags(text: str) -> str:
    """`#عاصي_الحلاني` -> `عاصي الحلاني`: keep the words a hashtag is made of."""
    return _HASHTAG_RE.sub(lambda m: m.group(1).replace("_", " "), text) if "#" in text else text


def space_after_punctuation(text: str) -> str:
    """Restore the space lost after a sentence mark between two words (`الدستوري.وكانت`)."""
    return _native.space_after_punctuation(text) if _native is not None else _GLUED_PUNCT_RE.sub(r"\1 ", text)


# --- news-page boilerplate (line level) -------------------------------------------------------

_HOME_RE = re.compile(r"^(?:ال?صفح[ةه] )?ال?رئيسي[ةه]\b|^home\b", re.IGNORECASE)
_CRUMB_SEPARATOR_RE = re.compile(r"\s(?:>|»|›|/|\\|\|)\s")
_FOOTER_RE = re.compile(
    r"^(?:تعليقات ال?قراء|ال?تعليقات|لا (?:يوجد|توجد) تعليقات|[اأ]ضف تعليق(?:ا|ك)?|"
    r"[اأ]ترك تعليق(?:ا|ك)?|شارك(?:ونا)? برأيك|كن [اأ]ول من يعلق)\s*[:.]?$"
)
#: `عمانيات - `, `القاهرة (رويترز) - `, `دبي - وام: `, `دبي، الإمارات العربية المتحدة (CNN)-- `
#: before the first sentence of a story.
_SOURCE_PREFIX_RE = re.compile(
    r"^(?:(?:[^\s\-–—:()]+(?: [^\s\-–—:()]+){0,3} ?)?(?:\([^()]{1,30}\))? ?(?:--|[-–—:]) ?)+"
)
_MAX_CRUMB_WORDS = 3
_MIN_LEAD_WORDS = 8


def _is_crumb(line: str) -> bool:
    return len(line.split()) <= _MAX_CRUMB_WORDS and not line.endswith((".", "؟", "!", "?"))


def remove_breadcrumbs(lines: list[str]) -> list[str]:
    """Leading navigation: a `الرئيسية` (home) line, crumbs joined by `>`/`/`, and the short
    section-name lines that follow the home link."""
    start = 0
    while start < len(lines) and _HOME_RE.match(lines[start]):
        home_line = lines[start]
        start += 1
        if not _CRUMB_SEPARATOR_RE.search(home_line) and len(home_line.split()) <= 2:
            # a bare home link: the section names follow on their own lines
            taken = 0
            while start < len(lines) - 1 and taken < 2 and _is_crumb(lines[start]):
                start += 1
                taken += 1
    return lines[start:]


def remove_comment_footer(lines: list[str]) -> list[str]:
    """Reader-comment widgets (`تعليقات القراء`, `لا يوجد تعليقات`) and what follows them."""
    for i, line in enumerate(lines):
        if i > 0 and _FOOTER_RE.match(line):
            return lines[:i]
    return lines


def remove_source_prefix(lines: list[str]) -> list[str]:
    """A dateline or agency prefix (`عمانيات - `) on one of the first lines of a story."""
    out = list(lines)
    for i, line in enumerate(out[:3]):
        match = _SOURCE_PREFIX_RE.match(line)
        if match and len(line[match.end() :].split()) >= _MIN_LEAD_WORDS:
            out[i] = line[match.end() :]
            break
    return out


def collapse_spaces(line: str) -> str:
    """Every run of white space to one space, none at the ends (most lines need nothing done)."""
    if "  " in line or line[:1] == " " or line[-1:] == " " or not line.isprintable():
        return " ".join(line.split())
    return line


def collapsed_lines(text: str) -> list[str]:
    """The non-empty lines of `text`, each through `collapse_spaces`."""
    if _native is not None:
        return _native.collapsed_lines(text)
    return [line for line in map(collapse_spaces, text.splitlines()) if line]


def remove_repeated_lines(lines: list[str]) -> list[str]:
    """Keep each paragraph once: pages often carry the body twice (print view, AMP copy)."""
    return list(dict.fromkeys(lines))


# --- the chain --------------------------------------------------------------------------------

# Repeated lines are dropped before the source prefix (a body pasted twice carries it twice) and
# again after it, in case stripping a prefix made two lines equal.
_LINE_STEPS = (
    ("breadcrumbs", remove_breadcrumbs),
    ("comment_footer", remove_comment_footer),
    ("repeated_lines", remove_repeated_lines),
    ("source_prefix", remove_source_prefix),
    ("repeated_lines", remove_repeated_lines),
)


class TextCleaner(BaseEstimator):
    """A chosen chain of cleaning steps, stored with a model so prediction cleans as training did.

    Each parameter switches one step. The character-level steps are merged into one `CharMap`
    when the cleaner is first used.
    """

    def __init__(
        self,
        diacritics: bool = True,
        tatweel: bool = True,
        alef: bool = True,
        yeh: bool = True,
        teh_marbuta: bool = True,
        digits: bool = True,
        html: bool = True,
        urls: bool = True,
        emails: bool = True,
        mentions: bool = True,
        hashtags: bool = True,
        punctuation_spacing: bool = True,
        breadcrumbs: bool = True,
        comment_footer: bool = True,
        source_prefix: bool = True,
        repeated_lines: bool = True,
    ):
        self.diacritics = diacritics
        self.tatweel = tatweel
        self.alef = alef
        self.yeh = yeh
        self.teh_marbuta = teh_marbuta
        self.digits = digits
        self.html = html
        self.urls = urls
        self.emails = emails
        self.mentions = mentions
        self.hashtags = hashtags
        self.punctuation_spacing = punctuation_spacing
        self.breadcrumbs = breadcrumbs
        self.comment_footer = comment_footer
        self.source_prefix = source_prefix
        self.repeated_lines = repeated_lines

    def _compiled(self):
        key = _switch_values(self)  # once per article: one C call, not a dict of sixteen look-ups
        if getattr(self, "_compiled_key", None) != key:
            params = dict(zip(_SWITCHES, key))
            char_map = CharMap(
                INVISIBLES_MAP,
                *(
                    step_map
                    for name, step_map in (
                        ("diacritics", DIACRITICS_MAP),
                        ("tatweel", TATWEEL_MAP),
                        ("alef", ALEF_MAP),
                        ("yeh", YEH_MAP),
                        ("teh_marbuta", TEH_MARBUTA_MAP),
                        ("digits", DIGITS_MAP),
                    )
                    if params[name]
                ),
            )
            text_steps = [
                step
                for name, step in (
                    ("html", remove_html),
                    ("urls", remove_urls),
                    ("emails", remove_emails),
                    ("mentions", remove_mentions),
                    ("hashtags", split_hashtags),
                    ("punctuation_spacing", space_after_punctuation),  # never across lines, so once per text
                )
                if params[name]
            ]
            line_steps = [step for name, step in _LINE_STEPS if params[name]]
            self._compiled_key = key
            self._compiled_steps = (char_map, text_steps, line_steps)
        return self._compiled_steps

    def __call__(self, text: str) -> str:
        char_map, text_steps, line_steps = self._compiled()
        normalized = normalize_unicode(text)
        text = char_map(normalized)
        # deleting marks, or mapping a letter (ٱ to ا before a madda), can uncover new pairs to compose
        if text != normalized and not unicodedata.is_normalized("NFKC", text):
            text = char_map(unicodedata.normalize("NFKC", text))
        for step in text_steps:
            text = step(text)
        lines = collapsed_lines(text)
        for step in line_steps:
            lines = step(lines)
        return "\n".join(lines)

    def transform(self, texts: Iterable[str]) -> list[str]:
        return [self(text) for text in texts]

    def fit(self, texts=None, y=None):
        return self


_SWITCHES = tuple(TextCleaner().get_params())
_switch_values = operator.attrgetter(*_SWITCHES)
_DEFAULT_CLEANER = TextCleaner()


def clean_text(text: str) -> str:
    """Clean one article with the default chain: normalization, web residue, page boilerplate."""
    return _DEFAULT_CLEANER(text)
