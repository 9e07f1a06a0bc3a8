"""Raw text to words with character offsets: the one splitting rule for prediction and raw text.

NER models here label *words*, so raw text must be cut into words the same way at training time
(raw text) and at prediction time, and every word must keep its exact place in the original
string so that entities can be reported as character spans of what the user gave us.

The rule, by Unicode general category (``unicodedata``, no normalisation):

- **Whitespace** (``str.isspace``: spaces, tabs, line ends, NBSP and every other ``Zs``) separates
  words and belongs to none.
- **Words** are maximal runs of letters, digits and combining marks (``L*``, ``N*``, ``M*``), so
  decomposed accents (NFD) and Indic vowel signs stay inside their word. Inside a run these also
  join, when a word character stands on both sides:

  - apostrophes ``'`` and ``’``: ``l'Italia``, ``d'Espagne``, ``O'Brien``, ``rock'n'roll`` and
    ``Obama's`` are one word each (WikiANN/PAN-X keeps elisions whole, and one predictable rule
    beats a per-language list of clitics);
  - hyphens ``-``, ``‐`` (U+2010), ``‑`` (U+2011): ``Baden-Württemberg``, ``Côte-d'Or``;
  - ``.`` or ``,`` between two digits: ``3.5``, ``1,000``, ``2.0.1``;
  - ZWNJ/ZWJ (U+200C, U+200D) and the soft hyphen (U+00AD): they are part of the spelling of
    Persian, Hindi and other scripts and of hyphenated Polish text, so they never cut a word.

- **Abbreviations** of single letters each followed by a period keep the periods: ``U.S.``,
  ``e.g.``; a lone ``Dr.`` gives ``Dr`` and ``.`` (a final period is usually sentence punctuation).
- **CJK ideographs, Hiragana, Katakana and Hangul syllables** are one word per character (these
  scripts do not mark word boundaries with spaces); a following combining mark (a voicing mark, an
  ideographic variation selector) stays with its character. Thai, Lao, Khmer and Burmese are also
  written without spaces but need a dictionary to split; they come out as space-separated runs.
- **Every other visible character** (punctuation, symbols, emoji, private-use and unassigned code
  points) is a word of its own, together with what extends it: combining marks and variation
  selectors, emoji skin-tone modifiers, emoji tag characters, and ``ZWJ`` + next symbol, so that
  ``👩🏽‍💻``, ``👨‍👩‍👧`` and ``🏴`` subdivision flags stay whole; two regional indicators make one flag.
- **Zero-width and control characters** (``Cc`` and ``Cf``: ZWSP U+200B, word joiner U+2060,
  BOM U+FEFF, direction marks, ...) are never words and, apart from the joiners above, cut words
  like a space does; they are simply skipped, so offsets stay those of the original string.
- Right-to-left text (Arabic, Hebrew) is handled in logical (memory) order; nothing is reordered.

Every character of the input that is neither whitespace nor a zero-width/control character lies
in exactly one word, and ``text[word.start:word.end] == word.text`` always holds. Nothing is
normalised (NFC would move offsets); classification reads the original code points.

The whole rule is one compiled ``re`` pattern whose character classes are built from
``unicodedata`` on first use (well under a second, once per process); splitting a line is then a
single ``finditer``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

# Scripts written without spaces between words: every letter is a word of its own.
_SINGLE_CHAR_RANGES: tuple[tuple[int, int], ...] = (
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7A3),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9D),  # half-width Katakana
    (0x1B000, 0x1B16F),  # Kana supplement / extended
    (0x20000, 0x323AF),  # CJK extensions B..H and compatibility supplement
)
_APOSTROPHES = "'\u2019"
_HYPHENS = "-\u2010\u2011"
_SPELLING_JOINERS = "\u200c\u200d\u00ad"  # ZWNJ, ZWJ, soft hyphen
_ZWJ = "\u200d"
_EMOJI_MODIFIERS = (0x1F3FB, 0x1F3FF)
_EMOJI_TAGS = (0xE0020, 0xE007F)
_REGIONAL_INDICATORS = (0x1F1E6, 0x1F1FF)


@dataclass(frozen=True, slots=True)
class Word:
    """One word and where it lies in the original string: ``original[start:end] == text``."""

    text: str
    start: int
    end: int


def split_words(text: str) -> list[Word]:
    """Words of ``text`` with character offsets into ``text`` itself (rule: module docstring)."""
    return [Word(match.group(), match.start(), match.end()) for match in _pattern().finditer(text)]


def _in_ranges(code: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(low <= code <= high for low, high in ranges)


def _char_kind(code: int) -> str:
    """One of: space, ignorable, single (CJK-like), letter, mark, digit (other N*), symbol."""
    char = chr(code)
    category = unicodedata.category(char)
    if char.isspace():
        return "space"
    if category in ("Cc", "Cf"):
        return "ignorable"
    if category[0] == "L":
        return "single" if _in_ranges(code, _SINGLE_CHAR_RANGES) else "letter"
    if category[0] == "M":
        return "mark"
    if category[0] == "N":
        return "digit"
    return "symbol"


def _kind_runs() -> list[tuple[int, int, str]]:
    """Maximal runs ``(first, last, kind)`` of consecutive code points of one kind (one pass)."""
    runs: list[tuple[int, int, str]] = []
    first, current = 0, _char_kind(0)
    for code in range(1, 0x110000):
        kind = _char_kind(code)
        if kind != current:
            runs.append((first, code - 1, current))
            first, current = code, kind
    runs.append((first, 0x10FFFF, current))
    return runs


def _escape_range(low: int, high: int) -> str:
    if low == high:
        return f"\\U{low:08x}"
    return f"\\U{low:08x}-\\U{high:08x}"


def _range_class(low: int, high: int) -> str:
    return "[" + _escape_range(low, high) + "]"


def _literal_class(chars: str) -> str:
    return "[" + "".join(f"\\U{ord(c):08x}" for c in chars) + "]"


def _kind_class(runs: list[tuple[int, int, str]], *kinds: str) -> str:
    """A regex matching one code point of the given kinds.

    ``re`` tests a class's BMP part with a bitmap but walks its astral ranges one by one, also for
    every BMP character that misses the bitmap; the astral part is therefore put behind a one-range
    guard so that common text never walks it.
    """
    wanted = [(low, high) for low, high, kind in runs if kind in kinds]
    bmp = [(low, min(high, 0xFFFF)) for low, high in wanted if low <= 0xFFFF]
    astral = [(max(low, 0x10000), high) for low, high in wanted if high > 0xFFFF]
    bmp_class = "[" + "".join(_escape_range(low, high) for low, high in bmp) + "]"
    if not astral:
        return bmp_class
    astral_class = "[" + "".join(_escape_range(low, high) for low, high in astral) + "]"
    return f"(?:{bmp_class}|(?=[\\U00010000-\\U0010ffff]){astral_class})"


@cache
def _pattern() -> re.Pattern[str]:
    """The compiled splitting rule; built lazily so importing this module stays instant."""
    runs = _kind_runs()
    word, letter = _kind_class(runs, "letter", "mark", "digit"), _kind_class(runs, "letter")
    mark, single, symbol = (_kind_class(runs, kind) for kind in ("mark", "single", "symbol"))
    joiner = _literal_class(_APOSTROPHES + _HYPHENS + _SPELLING_JOINERS)
    extender = f"(?:{mark}|{_range_class(*_EMOJI_MODIFIERS)}|{_range_class(*_EMOJI_TAGS)})"
    regional = _range_class(*_REGIONAL_INDICATORS)
    abbreviation = f"{letter}{mark}*\\.(?:{letter}{mark}*\\.)+"
    word_run = f"{word}+(?:(?:{joiner}|(?<=\\d)[.,](?=\\d)){word}+)*"
    flag = f"{regional}{regional}{extender}*"
    zwj = _literal_class(_ZWJ)
    emoji_or_symbol = f"{symbol}{extender}*(?:{zwj}{symbol}{extender}*)*"
    return re.compile("|".join((abbreviation, word_run, single + mark + "*", flag, emoji_or_symbol)))
