"""Option types and checks of the command line (a failed check is a usage error, exit code 2).

Checks run while Typer parses, before any work starts: a language that is not a code (a path
would leave ``-o``), an unknown split or encoding, a ``--device`` this machine does not have.
Options with a fixed vocabulary are ``Literal`` types (Typer makes them click choices: checked,
listed in ``--help``, completed by the shell); comma lists and devices get a completer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from nertool.errors import LabelError
from nertool.workflows.choices import (
    DEVICES,
    LANGUAGE_RULE,
    SPLIT_NAMES,
    SPLITS,
    Backend,
    ExportFormat,
    FileFormat,
    InputFormat,
    OutputFormat,
    TextMode,
    UnknownTypes,
    check_type_map,
    is_language_code,
)

Overrides = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe key: section.key=value (TOML value).")
]
OutDir = Annotated[
    Path | None, typer.Option("-o", "--output", help="Output folder (default: runs/<recipe name>).")
]
Resume = Annotated[bool, typer.Option(help="Continue from the run folder's last checkpoint.")]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="Torch threads (default: OMP_NUM_THREADS if set, else the physical cores this process may use).",
    ),
]
Overwrite = Annotated[
    bool, typer.Option(help="Start over in an output folder that holds a run: its nertool files are removed.")
]


def use_threads(threads: int | None) -> None:
    """Set torch's thread count by nertool's policy (``nertool.threads``), ``--threads`` first."""
    from nertool.threads import set_threads

    set_threads(threads)


def split_list(value: str) -> list[str]:
    """``a, b,,c`` → ``["a", "b", "c"]``."""
    return [item.strip() for item in value.split(",") if item.strip()]


def check_languages(value: str | None) -> str | None:
    """``--languages``: a comma-separated list of language codes (a path would leave ``-o``)."""
    for code in split_list(value or ""):
        if not is_language_code(code):
            raise typer.BadParameter(f"{code!r} is not a language code ({LANGUAGE_RULE})")
    return value


def parse_label_map(value: str) -> dict[str, str]:
    """``MISC=O,PERSON=PER`` → ``{"MISC": "O", "PERSON": "PER"}``; a bad entry is ``typer.BadParameter``."""
    mapping: dict[str, str] = {}
    for item in split_list(value):
        source, sep, target = (part.strip() for part in item.partition("="))
        if not sep or not source or not target:
            raise typer.BadParameter(f"{item!r} is not TYPE=TYPE or TYPE=O; write e.g. MISC=O,PERSON=PER")
        if source in mapping:
            raise typer.BadParameter(f"{source} is mapped twice; map each type once")
        mapping[source] = target
    try:
        check_type_map(mapping)
    except LabelError as error:
        raise typer.BadParameter(str(error)) from None
    return mapping


def check_label_map(value: str) -> str:
    """``--label-map``: checked while parsing, so a typo fails before the model is loaded."""
    parse_label_map(value)
    return value


_SPLIT_HELP = "train, validation (or dev, val, testa), test (or testb)"


def _split(name: str) -> str:
    """A split name or one of its aliases (``dev``) → the split (``validation``)."""
    split = SPLIT_NAMES.get(name)
    if split is None:
        raise typer.BadParameter(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
    return split


def check_splits(value: str) -> str:
    """``--split`` of evaluate: a comma list of splits, aliases given as the split they name."""
    splits = [_split(name) for name in split_list(value)]
    if not splits:
        raise typer.BadParameter(f"name at least one split ({', '.join(SPLITS)})")
    return ",".join(dict.fromkeys(splits))


def check_split(value: str) -> str:
    """``--split`` of compare: one split (an alias is given as the split it names)."""
    return _split(value.strip())


def complete_splits(incomplete: str) -> list[str]:
    """Shell completion of a comma list of splits: the last item is completed, the rest kept."""
    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + split for split in SPLITS if split.startswith(last)]


def complete_devices(incomplete: str) -> list[str]:
    return [device for device in DEVICES if device.startswith(incomplete)]


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


InputFormatOption = Annotated[InputFormat, typer.Option(help="Format of the input files.")]
OutputFormatOption = Annotated[OutputFormat, typer.Option(help="Format of the output.")]
TextModeOption = Annotated[
    TextMode, typer.Option(help="Text units: line, paragraph (blank-line separated) or file.")
]
Encoding = Annotated[str, typer.Option(help="Encoding of the input files.", callback=check_encoding)]
MaxTokens = Annotated[int, typer.Option(help="Most padded subword positions in one batch.", min=1)]
FileFormatOption = Annotated[FileFormat, typer.Option("--format", help="Format of the data files.")]
Splits = Annotated[
    str,
    typer.Option(
        "--split",
        metavar="SPLIT,...",
        help=f"Comma-separated splits to score: {_SPLIT_HELP}.",
        callback=check_splits,
        autocompletion=complete_splits,
    ),
]
Split = Annotated[
    str,
    typer.Option(
        "--split",
        metavar="SPLIT",
        help=f"The split to score: {_SPLIT_HELP}.",
        callback=check_split,
        autocompletion=complete_splits,
    ),
]
Device = Annotated[
    str | None,
    typer.Option(
        metavar="DEVICE",
        help="cpu, cuda, cuda:N or mps (default: the GPU if there is one).",
        callback=check_device,
        autocompletion=complete_devices,
    ),
]
BackendOption = Annotated[
    Backend,
    typer.Option(help="torch, onnx (ONNX Runtime on CPU, after nertool export) or auto (onnx if exported)."),
]
ExportFormatOption = Annotated[ExportFormat, typer.Option("--format", help="Format to export to.")]
DeviceMaxTokens = Annotated[
    int | None,
    typer.Option(
        help="Most padded subword positions in one batch (default: 8192 on CPU, 65536 on CUDA).", min=1
    ),
]
StrictTags = Annotated[bool, typer.Option(help="Refuse orphan I- tags instead of repairing them.")]
Bootstrap = Annotated[int, typer.Option(help="Resamples for 95% intervals of each F1 (0: none).", min=0)]
Errors = Annotated[
    bool, typer.Option("--errors/--no-errors", help="Per-subword loss tables: errors.md and errors.json.")
]
Report = Annotated[
    bool, typer.Option("--report/--no-report", help="report.md, confusion matrices, heatmaps.")
]
JsonOutput = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on standard output instead of tables.")
]
LabelMapSpec = Annotated[
    str,
    typer.Option(
        "--label-map",
        metavar="TYPE=TYPE|O,...",
        help="Rename or drop gold entity types before scoring, e.g. MISC=O,DATE=O,PERSON=PER.",
        callback=check_label_map,
    ),
]
UnknownTypesOption = Annotated[
    UnknownTypes,
    typer.Option(help="Gold types the model does not know: an error, or dropped to O (counted)."),
]
Languages = Annotated[
    str,
    typer.Option(help="Comma-separated languages (default: all the source has).", callback=check_languages),
]
DataSpec = Annotated[
    str,
    typer.Option(
        "--data",
        help="Data SPEC: a file, a corpus folder <dir>/<lang>/<split>.<ext>, hub:NAME[:CONFIG] or 'sample'.",
    ),
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
