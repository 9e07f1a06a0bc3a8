"""The values the commands accept, named once where the stages define them.

The CLI builds its choices and option checks from these (it imports nothing below ``workflows``):
input formats, splits (and the file names the readers take for them), prediction formats and
text modes, devices, backends and export formats, the rule for language codes, label maps and what
becomes of unknown gold types.
"""

from __future__ import annotations

from nertool.data.harmonise import UnknownTypes
from nertool.data.readers import FileFormat
from nertool.data.sources import SPLIT_ALIASES, SPLITS
from nertool.labels import check_type_map
from nertool.langcode import LANGUAGE_RULE, is_language_code
from nertool.model.onnx_backend import Backend, ExportFormat
from nertool.predict.readers import InputFormat, TextMode
from nertool.predict.writers import OutputFormat

# ``dev`` → ``validation``: every name a corpus folder may give a split file, to the split it is
SPLIT_NAMES: dict[str, str] = {alias: split for split, names in SPLIT_ALIASES.items() for alias in names}
DEVICES = ("cpu", "cuda", "cuda:0", "cuda:1", "mps")  # completed by the shell; any cuda:N is accepted

__all__ = [
    "DEVICES",
    "LANGUAGE_RULE",
    "SPLITS",
    "SPLIT_NAMES",
    "Backend",
    "ExportFormat",
    "FileFormat",
    "InputFormat",
    "OutputFormat",
    "TextMode",
    "UnknownTypes",
    "check_type_map",
    "is_language_code",
]
