"""The values the commands accept, named once where the stages define them.

The CLI builds its choices and option checks from these (it imports nothing below ``workflows``):
input formats, splits, prediction formats and text modes, and the rule for language codes.
"""

from __future__ import annotations

from nertool.data.readers import FileFormat
from nertool.data.sources import SPLITS
from nertool.langcode import LANGUAGE_RULE, is_language_code
from nertool.predict.readers import InputFormat, TextMode
from nertool.predict.writers import OutputFormat

__all__ = [
    "LANGUAGE_RULE",
    "SPLITS",
    "FileFormat",
    "InputFormat",
    "OutputFormat",
    "TextMode",
    "is_language_code",
]
