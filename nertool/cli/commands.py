"""The ``nertool`` command line: Typer commands that parse, call a workflow, render its result.

Each command is a thin layer over a plain function in ``workflows`` (which tests call
directly). Heavy libraries (torch, transformers) are imported inside commands, so
``nertool --help`` is instant.

Exit codes and the one error boundary (``_errors``):

- 2: a usage error, found while parsing, before any work starts: an unknown ``--format``,
  ``--split``, ``--input-format``, ``--output-format`` or ``--text-mode`` (click choices), a
  language that is not a code (``nertool.langcode``), an unknown ``--encoding``, a ``--device``
  this machine does not have (``cuda`` without a CUDA device).
- 1: the input is wrong or the system refused: any ``NertoolError``, and the standard errors
  that leak from below (``OSError`` such as a permission, a folder where a file belongs, a full
  disk; invalid JSON, TOML or UTF-8 in a file nertool did not write; a corrupt safetensors
  file; a pydantic ``ValidationError``) become one line ``error: <file>: <what>; <what to do>``.
- 1: anything else is a bug; it is one line too, ``error: internal error: <type>: <message>``,
  naming ``NERTOOL_DEBUG=1``, with which the exception propagates with its traceback.
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import tomllib
import typer

from nertool import __version__
from nertool.data.readers import FileFormat
from nertool.data.sources import SPLITS
from nertool.errors import NertoolError
from nertool.langcode import LANGUAGE_RULE, is_language_code
from nertool.predict.readers import InputFormat, TextMode
from nertool.predict.writers import OutputFormat

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=__doc__.splitlines()[0] if __doc__ else None,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(no_args_is_help=True, help="Look at data sources before training on them.")
app.add_typer(data_app, name="data")

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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nertool {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    """Multilingual NER with XLM-R: train, evaluate, transfer across languages, tag text files."""
    _setup_logging(logging.WARNING if quiet else logging.INFO)


def _setup_logging(level: int) -> None:
    from rich.logging import RichHandler

    logger = logging.getLogger("nertool")
    logger.handlers = [RichHandler(show_time=False, show_path=False, console=_console(stderr=True))]
    logger.setLevel(level)
    for noisy in ("transformers", "accelerate", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # imported before the CLI ran (tests, embedding)
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


@contextmanager
def _errors() -> Iterator[None]:
    """The one error boundary: every failure is one readable line (see the module docstring)."""
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except NertoolError as error:
        _fail(str(error))
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as error:
        message = _leaked_message(error)
        if message is None and os.environ.get("NERTOOL_DEBUG", "") not in ("", "0"):
            raise
        _fail(message or _internal_message(error))


def _fail(message: str) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)  # one line, whatever the message holds
    raise typer.Exit(1) from None


_OS_ADVICE = {
    "EACCES": "check its permissions",
    "EPERM": "check its permissions",
    "ENOENT": "check the path",
    "EISDIR": "it is a folder: name a file",
    "ENOTDIR": "a part of the path is a file, not a folder: check the path",
    "EEXIST": "it already exists: remove it or choose another path",
    "ENOSPC": "the disk is full: free space or write somewhere else",
    "EDQUOT": "the disk quota is used up: free space or write somewhere else",
    "EROFS": "the file system is read-only: write somewhere else",
    "ELOOP": "too many symbolic links: check the path",
}


def _leaked_message(error: Exception) -> str | None:
    """The one-line message for a standard error that escaped the library, or None for a bug."""
    if isinstance(error, OSError):
        return _os_message(error)
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON ({error.msg}, line {error.lineno} column {error.colno}); {_REWRITE}"
    if isinstance(error, tomllib.TOMLDecodeError):
        return f"invalid TOML ({error}); fix the file"
    if isinstance(error, UnicodeDecodeError):
        return f"a file is not valid {error.encoding} ({error.reason}); re-save it as UTF-8"
    if type(error).__name__ == "SafetensorError":
        return f"cannot read a safetensors file ({error}); {_REWRITE}"
    if type(error).__name__ == "ValidationError" and type(error).__module__.startswith("pydantic"):
        first = error.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid setting {where}: {first['msg']}; fix it"
    if isinstance(error, MemoryError):
        return "out of memory; use smaller batches (batch_size, --max-tokens) or less data"
    if type(error).__name__ == "OutOfMemoryError":
        return "out of GPU memory; use smaller batches (train.batch_size, --max-tokens) or a larger GPU"
    return None


_REWRITE = "the file is damaged or incomplete: rewrite it (rerun the command that made it)"


def _os_message(error: OSError) -> str:
    """``file: what; what to do`` from the error's filename, errno and text."""
    import errno

    name = errno.errorcode.get(error.errno or 0, "")
    what = error.strerror or str(error)
    advice = _OS_ADVICE.get(name, "check the path and permissions")
    paths = [str(path) for path in (error.filename, error.filename2) if path is not None]
    return f"{' -> '.join(paths)}: {what}; {advice}" if paths else f"{what}; {advice}"


def _internal_message(error: Exception) -> str:
    return (
        f"internal error: {type(error).__name__}: {error} "
        "(rerun with NERTOOL_DEBUG=1 for the traceback, and report it)"
    )


# ---------------------------------------------------------------- option checks (exit code 2)


def _check_languages_option(value: str | None) -> str | None:
    """``--languages``: a comma-separated list of language codes (a path would leave ``-o``)."""
    for code in _split_list(value or ""):
        if not is_language_code(code):
            raise typer.BadParameter(f"{code!r} is not a language code ({LANGUAGE_RULE})")
    return value


def _check_splits_option(value: str) -> str:
    for split in _split_list(value):
        if split not in SPLITS:
            raise typer.BadParameter(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if not _split_list(value):
        raise typer.BadParameter(f"name at least one split ({', '.join(SPLITS)})")
    return value


def _check_split_option(value: str) -> str:
    if value not in SPLITS:
        raise typer.BadParameter(f"unknown split {value!r}; use one of {', '.join(SPLITS)}")
    return value


def _check_encoding_option(value: str) -> str:
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise typer.BadParameter(f"unknown encoding {value!r}; use utf-8, latin-1, cp1252 ...") from None
    return value


_DEVICE = re.compile(r"(cpu|mps|cuda)(:(\d+))?")


def _check_device_option(value: str | None) -> str | None:
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
    str, typer.Option(help="Comma-separated languages (default: all).", callback=_check_languages_option)
]


def _default_out(recipe: Path, out: Path | None, kind: str = "") -> Path:
    return out if out is not None else Path("runs") / (recipe.stem + kind)


def _world_is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


@app.command()
def train(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML file (see recipes/).")],
    output: OutDir = None,
    overrides: Overrides = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
) -> None:
    """Fine-tune a token-classification model; writes model/, metrics.json and logs to the run folder."""
    from nertool.cli import render
    from nertool.config import load_recipe
    from nertool.run_folder import claim_run_folder
    from nertool.workflows.train import train_run, train_seeds

    with _errors():
        config = load_recipe(recipe, overrides or [])
        run_dir = _default_out(recipe, output)
        reporter = render.progress_reporter(_world_is_main())
        with claim_run_folder(run_dir, "train", resume=resume, overwrite=overwrite):
            if config.train.seeds:
                result = train_seeds(config, run_dir, resume=resume, reporter=reporter)
            else:
                result = train_run(config, run_dir, resume=resume, reporter=reporter)
        if _world_is_main() and config.train.seeds:
            render.print_seed_metrics(result.metrics, title=f"{run_dir} — F1 over seeds {config.train.seeds}")
        elif _world_is_main():
            render.print_metrics(result.metrics, title=f"{run_dir} — test/validation F1")


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Run folder or model folder.")],
    data: Annotated[
        str,
        typer.Option(
            help="Data SPEC: file, corpus folder <dir>/<lang>/<split>.<ext>, hub:NAME[:CONFIG], or 'sample'."
        ),
    ],
    languages: Annotated[
        str,
        typer.Option(
            help="Comma-separated languages (default: all in the folder).", callback=_check_languages_option
        ),
    ] = "",
    split: Annotated[
        str, typer.Option(help="Comma-separated splits to score.", callback=_check_splits_option)
    ] = "test",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Report folder (metrics.json, predictions/).")
    ] = None,
    file_format: FileFormatOption = "auto",
    strict_tags: Annotated[
        bool, typer.Option(help="Refuse orphan I- tags instead of repairing them.")
    ] = False,
    bootstrap: Annotated[
        int, typer.Option(help="Resamples for 95% intervals of each F1 (0: none).", min=0)
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    errors: Annotated[
        bool, typer.Option("--errors/--no-errors", help="Per-subword loss tables: errors.md/json.")
    ] = True,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="report.md, confusion matrices, heatmaps.")
    ] = True,
) -> None:
    """Score a trained model per language and split with seqeval (default, strict IOB2), and explain it."""
    from nertool.cli import render
    from nertool.evaluate.report import ReportOptions
    from nertool.workflows.train import evaluate_model

    with _errors():
        options = ReportOptions(bootstrap=bootstrap, seed=seed, errors=errors, report=report)
        result = evaluate_model(
            model,
            data,
            _split_list(languages),
            splits=_split_list(split),
            report_dir=output,
            file_format=file_format,
            strict_tags=strict_tags,
            options=options,
        )
        render.print_metrics(result.metrics, title=f"{model} on {data}")
        if output is not None and report:
            render.console.print(f"report: {output / 'report.md'}")


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@data_app.command("inspect")
def data_inspect(
    spec: Annotated[
        str, typer.Argument(help="Data SPEC (file, corpus folder, hub:NAME[:CONFIG], 'sample').")
    ],
    languages: Languages = "",
    model: Annotated[
        str | None, typer.Option(help="Tokenizer for the alignment audit (run folder or hub id).")
    ] = None,
    file_format: FileFormatOption = "auto",
) -> None:
    """Counts per language and split: sentences, labels, entity types, share of O, subword alignment."""
    from nertool.cli import render
    from nertool.workflows.inspection import inspect_source

    with _errors():
        render.print_inspection(inspect_source(spec, _split_list(languages), model, file_format=file_format))


@app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path("runs/demo"),
) -> None:
    """Train scratch:tiny on the bundled German sample and score de/fr/it/en (offline, ~1 minute)."""
    from nertool.cli import render
    from nertool.config import load_recipe
    from nertool.workflows.train import train_run

    with _errors():
        recipe = load_recipe(Path(__file__).resolve().parents[1] / "resources" / "demo.toml")
        result = train_run(recipe, output, reporter=render.progress_reporter(True))
        render.print_metrics(result.metrics, title="demo: scratch:tiny trained on the German sample")


def _is_stdout(output: str | None) -> bool:
    """True when predictions go to standard output (``-``, none, or a path that is stdout itself)."""
    import os

    if output in (None, "-"):
        return True
    try:
        here, there = os.stat(output), os.fstat(1)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Run folder or model folder.")],
    inputs: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or - for standard input.")],
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Output file (default: standard output).")
    ] = None,
    input_format: Annotated[InputFormat, typer.Option(help="Input format.")] = "auto",
    output_format: Annotated[OutputFormat, typer.Option(help="Output format.")] = "jsonl",
    text_mode: Annotated[
        TextMode, typer.Option(help="Text units: line, paragraph (blank-line separated) or file.")
    ] = "line",
    doc_per_file: Annotated[bool, typer.Option(help="Shortcut for --text-mode file.")] = False,
    encoding: Annotated[
        str, typer.Option(help="Encoding of the input files.", callback=_check_encoding_option)
    ] = "utf-8",
    batch_size: Annotated[int, typer.Option(help="Most sentences in one batch.", min=1)] = 256,
    max_tokens: Annotated[
        int, typer.Option(help="Most padded subword positions in one batch.", min=1)
    ] = 8192,
    device: Annotated[
        str | None,
        typer.Option(help="cpu, cuda, cuda:1 ... (default: GPU if any).", callback=_check_device_option),
    ] = None,
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 on CPU: ~2x faster, small F1 cost.")] = False,
) -> None:
    """Tag text, CoNLL or JSONL files; one output record per input line/sentence, in order."""
    from nertool.cli import render
    from nertool.files import refuse_inputs_as_output
    from nertool.predict.readers import expand_inputs
    from nertool.predict.tagger import Tagger, predict_files

    with _errors():
        expand_inputs(inputs)  # a missing or repeated input fails before the model loads
        refuse_inputs_as_output(inputs, output)  # before the model loads
        tagger = Tagger.load(model, device, quantize, max_tokens, batch_size)
        to_file = not _is_stdout(output)
        with render.unit_progress(enabled=to_file) as advance:
            summary = predict_files(
                tagger,
                inputs,
                output,
                input_format=input_format,
                output_format=output_format,
                text_mode="file" if doc_per_file else text_mode,
                encoding=encoding,
                on_chunk=advance,
            )
        if to_file:
            render.console.print(f"{summary.units} units, {summary.entities} entities -> {summary.output}")


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="Run or model folder A.")],
    run_b: Annotated[str, typer.Argument(help="Run or model folder B.")],
    data: Annotated[str, typer.Option(help="Data SPEC both models are scored on (as for evaluate).")],
    languages: Languages = "",
    split: Annotated[str, typer.Option(help="The split to score.", callback=_check_split_option)] = "test",
    bootstrap: Annotated[int, typer.Option(help="Paired bootstrap resamples.", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="JSON file for the result.")] = None,
    file_format: FileFormatOption = "auto",
) -> None:
    """Is A's F1 really different from B's? A paired bootstrap test per language on the same sentences."""
    from nertool.cli import render
    from nertool.workflows.train import compare_models

    with _errors():
        result = compare_models(
            run_a,
            run_b,
            data,
            languages=_split_list(languages),
            split=split,
            n=bootstrap,
            seed=seed,
            output=output,
            file_format=file_format,
        )
        render.print_comparison(result)


@app.command()
def transfer(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML file with a transfer section (see recipes/).")],
    output: OutDir = None,
    overrides: Overrides = None,
    keep_checkpoints: Annotated[bool, typer.Option(help="Keep each finished run's checkpoint/.")] = False,
    overwrite: Overwrite = False,
) -> None:
    """Cross-lingual transfer: a model per training-language set, test F1 per language, sample-size curve."""
    from nertool.cli import render
    from nertool.config import load_recipe
    from nertool.run_folder import claim_run_folder
    from nertool.transfer.report import summary_notes, summary_rows
    from nertool.workflows.transfer import run_transfer

    with _errors():
        config = load_recipe(recipe, overrides or [])
        progress = render.transfer_progress(_world_is_main())
        out = _default_out(recipe, output, "" if recipe.stem.endswith("transfer") else "-transfer")
        with claim_run_folder(out, "transfer", overwrite=overwrite):
            result = run_transfer(config, out, progress, keep_checkpoints=keep_checkpoints)
        if _world_is_main():
            title = f"test F1, rows = training languages ({result.table.selection})"
            render.print_transfer(title, summary_rows(result.table), summary_notes(result))


@app.command()
def pretrain(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML with a [pretrain] section (see recipes/).")],
    output: OutDir = None,
    overrides: Overrides = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
) -> None:
    """Masked-LM (continued) pre-training on raw text; RUN_DIR/model/ then serves as model.name for train."""
    from nertool.cli import render
    from nertool.config import load_recipe
    from nertool.run_folder import claim_run_folder
    from nertool.workflows.pretrain import pretrain_run

    with _errors():
        config = load_recipe(recipe, overrides or [])
        run_dir = _default_out(recipe, output)
        progress = _pretrain_progress(_world_is_main())
        with claim_run_folder(run_dir, "pretrain", resume=resume, overwrite=overwrite):
            result = pretrain_run(config, run_dir, resume=resume, reporter=progress)
        if _world_is_main():
            rows = [{"step": r["step"], **r["eval"]} for r in result.history]
            render.print_table(f"{run_dir} — held-out masked-LM loss", rows)
            typer.echo(f"model: {run_dir / 'model'} (use it as model.name in a train recipe)")


def _pretrain_progress(enabled: bool) -> Any:
    """The training progress bar, printing held-out perplexity where ``train`` prints dev F1."""
    from nertool.cli import render

    class PretrainProgress(render.ProgressReporter):
        def log(self, record: dict[str, Any]) -> None:
            if self.progress is not None and "eval" in record:
                scores = record["eval"]
                self.progress.console.print(
                    f"step {record['step']}: held-out loss {scores['heldout_loss']:.4f}, "
                    f"perplexity {scores['perplexity']:.1f}"
                )

    return PretrainProgress(enabled, description="pre-training")


def main(argv: list[str] | None = None) -> Callable[..., Any] | None:
    """Console-script entry point."""
    return app(args=argv if argv is not None else sys.argv[1:], prog_name="nertool")
