"""The one rule for language codes, wherever they come in (options, recipes, folder names).

A language code names output files and folders (``test-de.conll``, ``runs/x/de+fr/``) and is
joined into paths of corpus folders, so ``../../x`` given as a language would write or read
outside the folder the user named. Every entry point checks codes with ``check_language``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nertool.errors import ConfigError

LANGUAGE_RULE = "1 to 32 letters, digits, '_' or '-'"
_LANGUAGE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def language_of(name: str) -> str:
    """The language of a set name: ``fr`` for ``wikiann:fr`` (a ``data.eval_sources`` target), the
    name itself for a plain language; tables, cards and zero-shot marks go by it."""
    return name.rpartition(":")[2]


def is_language_code(code: object) -> bool:
    """True for a code matching ``[A-Za-z0-9_-]{1,32}`` (``de``, ``pt-BR``, ``zh_yue``, ``und``)."""
    return isinstance(code, str) and _LANGUAGE.fullmatch(code) is not None


def check_language(code: object, where: str) -> str:
    """``code`` itself when it is a language code, else a ``ConfigError`` naming ``where``.

    The rule is ``[A-Za-z0-9_-]{1,32}``: ISO 639 codes, BCP 47 tags written with ``-`` or ``_``,
    and corpus names such as ``PAN-X_de`` pass; anything holding ``/``, ``.``, ``\\``, spaces or
    other characters that could leave an output folder, or an empty or very long code, does not.
    """
    if not is_language_code(code):
        raise ConfigError(f"{where}: {code!r} is not a language code ({LANGUAGE_RULE}); fix it")
    return str(code)


def check_languages(codes: Iterable[object], where: str) -> list[str]:
    """Every code checked with ``check_language``, in order."""
    return [check_language(code, where) for code in codes]
