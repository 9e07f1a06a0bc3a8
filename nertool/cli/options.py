"""Option types and checks of the command line (a failed check is a usage error, exit code 2).

Checks run while Typer parses, before any work starts: a language that is not a code (a path
would leave ``-o``), an unknown split or encoding, a ``--device`` this machine does not have.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from nertool.workflows.choices import LANGUAGE_RULE, SPLITS, FileFormat, is_language_code

Overrides = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe key: section.key=value (TOML value).")
]
OutDir = Annotated[
    Path | None, typer.Option("-o", "--output", help="Output folder (default: runs/<recipe name>).")
]
Resume = Annotated[bool, typer.Option(help="Continue from the run folder's last checkpoint.")]
Overwrite = Annotated[
    bool, typer.Option(help="Start over in an output folder that holds a run: its nertool files are removed.")
]


def split_list(value: str) -> list[str]:
    """``a, b,,c`` → ``["a", "b", "c"]``."""
    return [item.strip() for item in value.split(",") if item.strip()]


def check_languages(value: str | None) -> str | None:
    """``--languages``: a comma-separated list of language codes (a path would leave ``-o``)."""
    for code in split_list(value or ""):
        if not is_language_code(code):
            raise typer.BadParameter(f"{code!r} is not a language code ({LANGUAGE_RULE})")
    return value


def check_splits(value: str) -> str:
    for split in split_list(value):
        if split not in SPLITS:
            raise typer.BadParameter(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if not split_list(value):
        raise typer.BadParameter(f"name at least one split ({', '.join(SPLITS)})")
    return value


def check_split(value: str) -> str:
    if value not in SPLITS:
        raise typer.BadParameter(f"unknown split {value!r}; use one of {', '.join(SPLITS)}")
    return value


def check_encoding(value: str) -> str:
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise typer.BadParameter(f"unknown encoding {value!r}; use utf-8, latin-1, cp1252 ...") from None
    return value


_DEVICE = re.compile(r"(cpu|mps|cuda)(:(\d+))?")


def check_device(value: str | None) -> str | None:
    """``--device``: a device this machine has, checked before a model is loaded."""
    if value is None:
        return None
    match = _DEVICE.fullmatch(value)
    if match is None:
        raise typer.BadParameter(f"unknown device {value!r}; use cpu, cuda or cuda:N")
    kind, index = match.group(1), int(match.group(3) or 0)
    if kind == "cuda":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise typer.BadParameter("no CUDA device is available on this machine; use --device cpu")
        if index >= count:
            raise typer.BadParameter(f"there is no {value} (this machine has {count} CUDA device(s))")
    if kind == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise typer.BadParameter("no MPS device is available on this machine; use --device cpu")
    return value


FileFormatOption = Annotated[FileFormat, typer.Option("--format", help="Input format.")]
Languages = Annotated[
    str, typer.Option(help="Comma-separated languages (default: all).", callback=check_languages)
]


def default_out(recipe: Path, out: Path | None, kind: str = "") -> Path:
    """``-o``, or ``runs/<recipe name><kind>``."""
    return out if out is not None else Path("runs") / (recipe.stem + kind)


def transfer_out(recipe: Path, out: Path | None) -> Path:
    """A transfer recipe's default folder ends in ``-transfer`` (unless its name already does)."""
    return default_out(recipe, out, "" if recipe.stem.endswith("transfer") else "-transfer")


def world_is_main() -> bool:
    """Rank 0 of a multi-process launch, or a single process: the one that prints."""
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def is_stdout(output: str | None) -> bool:
    """True when predictions go to standard output (``-``, none, or a path that is stdout itself)."""
    if output in (None, "-"):
        return True
    try:
        here, there = os.stat(output), os.fstat(1)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
