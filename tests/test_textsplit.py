"""The shared word-splitting rule: a table of scripts and hard cases, and coverage properties."""

from __future__ import annotations

import random
import unicodedata

import pytest

from nertool.predict.textsplit import Word, split_words

CASES = [
    # English punctuation, abbreviations and numbers
    ("Hello, world!", ["Hello", ",", "world", "!"]),
    (
        "The U.S. economy grew 3.5% in 2019.",
        ["The", "U.S.", "economy", "grew", "3.5", "%", "in", "2019", "."],
    ),
    ("Mr. Smith's dog (e.g., Rex)", ["Mr", ".", "Smith's", "dog", "(", "e.g.", ",", "Rex", ")"]),
    ("1,000,000 people; 1.000,50 €", ["1,000,000", "people", ";", "1.000,50", "€"]),
    ("'quoted' and \"double\"", ["'", "quoted", "'", "and", '"', "double", '"']),
    ("(2019–2020) -5 --", ["(", "2019", "–", "2020", ")", "-", "5", "-", "-"]),
    ("snake_case a@b.com", ["snake", "_", "case", "a", "@", "b", ".", "com"]),
    # German compounds with hyphens
    ("Der Baden-Württemberger Ministerpräsident", ["Der", "Baden-Württemberger", "Ministerpräsident"]),
    ("Nord‐Süd‑Achse", ["Nord‐Süd‑Achse"]),
    # French and Italian elision: the apostrophe keeps the word whole
    ("l'Italia e dell'Europa", ["l'Italia", "e", "dell'Europa"]),
    ("j’aime Côte-d'Or aujourd'hui", ["j’aime", "Côte-d'Or", "aujourd'hui"]),
    # right-to-left scripts stay in logical order
    ("السلام عليكم يا محمد.", ["السلام", "عليكم", "يا", "محمد", "."]),
    ("שלום, עולם", ["שלום", ",", "עולם"]),
    # CJK: one word per ideograph / kana / Hangul syllable, Latin and digits still runs
    ("北京是中国的首都。", ["北", "京", "是", "中", "国", "的", "首", "都", "。"]),
    (
        "私はトヨタのCEOです。東京2020",
        ["私", "は", "ト", "ヨ", "タ", "の", "CEO", "で", "す", "。", "東", "京", "2020"],
    ),
    ("한국어 텍스트", ["한", "국", "어", "텍", "스", "트"]),
    ("か\u3099", ["か\u3099"]),  # combining voicing mark stays with its kana
    # emoji: ZWJ sequences, skin tones, flags, keycaps, variation selectors
    ("👋🏻 hi 👩\u200d❤️\u200d💋\u200d👨!", ["👋🏻", "hi", "👩\u200d❤️\u200d💋\u200d👨", "!"]),
    ("👩🏽\u200d💻👨\u200d👩\u200d👧", ["👩🏽\u200d💻", "👨\u200d👩\u200d👧"]),
    ("🇩🇪🇫🇷 #️⃣ ©️", ["🇩🇪", "🇫🇷", "#️⃣", "©️"]),
    (
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
        ["🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"],
    ),
    # zero-width and control characters: never words, never glue
    ("Berlin\u200bParis", ["Berlin", "Paris"]),
    ("a\u2060b\ufeffc\u200ed", ["a", "b", "c", "d"]),
    ("\u200b\u200b", []),
    ("\x00a\x07b", ["a", "b"]),
    # ...but ZWNJ/ZWJ/soft hyphen inside a word are part of its spelling
    ("می\u200cخواهم", ["می\u200cخواهم"]),
    ("वाङ्\u200dमय", ["वाङ्\u200dमय"]),
    ("przed\u00adstawienie", ["przed\u00adstawienie"]),
    # whitespace of every kind separates
    ("a\u00a0b\u202fc\u3000d", ["a", "b", "c", "d"]),
    ("a\tb\n c\r\nd", ["a", "b", "c", "d"]),
    ("", []),
    ("   \t ", []),
    # decomposed accents (NFD) and Indic vowel signs stay inside the word
    ("Cafe\u0301 re\u0301sume\u0301", ["Cafe\u0301", "re\u0301sume\u0301"]),
    ("संस्कृत हिन्दी", ["संस्कृत", "हिन्दी"]),
    ("Ａｐｐｌｅ１２３", ["Ａｐｐｌｅ１２３"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split_table(text: str, expected: list[str]) -> None:
    words = split_words(text)
    assert [word.text for word in words] == expected
    assert all(text[word.start : word.end] == word.text for word in words)


def test_offsets_of_decomposed_text_refer_to_the_original_string() -> None:
    text = "Ame\u0301lie in Montre\u0301al"
    assert split_words(text) == [
        Word("Ame\u0301lie", 0, 7),
        Word("in", 8, 10),
        Word("Montre\u0301al", 11, 20),
    ]
    assert unicodedata.normalize("NFC", text) != text  # the text is really decomposed


def test_offsets_after_zero_width_and_nbsp() -> None:
    assert split_words("x\u200by\u00a0z") == [Word("x", 0, 1), Word("y", 2, 3), Word("z", 4, 5)]


def test_long_line_of_three_thousand_words() -> None:
    text = " ".join(f"Wort{index}," for index in range(3000))
    words = split_words(text)
    assert len(words) == 6000
    assert words[-2] == Word("Wort2999", len(text) - 9, len(text) - 1)


# A pool of characters chosen to stress every branch of the rule.
POOL = (
    "aZé\u0301ß3٣,.'’-‐_@#%()[]\"!?…—–"  # Latin, marks, digits, punctuation, joiners
    "  \t\n\r\u00a0\u2009\u3000"  # whitespace
    "\u200b\u200c\u200d\u2060\ufeff\u200e\x00\x1b\u00ad"  # zero-width, controls, soft hyphen
    "مرحباשלום北京東京かなカナ한국"  # RTL, CJK, kana, Hangul
    "👩🏽👨💻❤\ufe0f🇩🇪\u20e3\U000e0067\U000e007f\U00020000\ue000\U0010ffff"  # emoji parts, astral
)
INVISIBLE = {"Cc", "Cf"}


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(POOL) for _ in range(rng.randint(0, 40)))


@pytest.mark.parametrize("seed", range(20))
def test_words_cover_every_visible_character_exactly_once(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        text = _random_text(rng)
        words = split_words(text)
        covered = [0] * len(text)
        for word in words:
            assert word.text and text[word.start : word.end] == word.text
            assert not any(char.isspace() for char in word.text)
            for position in range(word.start, word.end):
                covered[position] += 1
        assert max(covered, default=0) <= 1
        for char, count in zip(text, covered, strict=True):
            if count == 0:
                assert char.isspace() or unicodedata.category(char) in INVISIBLE, (text, char)
        assert [word.start for word in words] == sorted(word.start for word in words)


def test_words_are_not_split_by_normalisation() -> None:
    composed = "Zürich Genève"
    decomposed = unicodedata.normalize("NFD", composed)
    assert [w.text for w in split_words(decomposed)] == unicodedata.normalize("NFD", composed).split()
    assert len(split_words(composed)) == len(split_words(decomposed)) == 2
