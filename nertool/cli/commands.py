"""The ``nertool`` command line: Typer commands that parse, call a workflow, render its result.

Each command parses its arguments, calls one function in ``workflows`` by keyword (which tests
call directly, or replace by a stub), and hands the result to ``render``. Heavy libraries
(torch, transformers) are imported inside commands, so ``nertool --help`` is instant.

Exit codes and the one error boundary (``boundary.errors``; option checks in ``options``):

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

import logging
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from nertool import __version__
from nertool.cli import boundary
from nertool.cli.options import (
    FileFormatOption,
    Languages,
    OutDir,
    Overrides,
    Overwrite,
    Resume,
    check_device,
    check_encoding,
    check_languages,
    check_split,
    check_splits,
    default_out,
    is_stdout,
    split_list,
    transfer_out,
    world_is_main,
)
from nertool.workflows.choices import InputFormat, OutputFormat, TextMode

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=__doc__.splitlines()[0] if __doc__ else None,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(no_args_is_help=True, help="Look at data sources before training on them.")
app.add_typer(data_app, name="data")


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
    import os

    from rich.console import Console
    from rich.logging import RichHandler

    logger = logging.getLogger("nertool")
    logger.handlers = [RichHandler(show_time=False, show_path=False, console=Console(stderr=True))]
    logger.setLevel(level)
    for noisy in ("transformers", "accelerate", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # imported before the CLI ran (tests, embedding)
        sys.modules["transformers"].utils.logging.disable_progress_bar()


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
    from nertool.workflows import jobs

    with boundary.errors():
        config = load_recipe(recipe, overrides or [])
        run_dir = default_out(recipe, output)
        reporter = render.progress_reporter(world_is_main())
        result = jobs.train_job(config, run_dir, resume=resume, overwrite=overwrite, reporter=reporter)
        if world_is_main() and config.train.seeds:
            render.print_seed_metrics(result.metrics, title=f"{run_dir} — F1 over seeds {config.train.seeds}")
        elif world_is_main():
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
            help="Comma-separated languages (default: all in the folder).", callback=check_languages
        ),
    ] = "",
    split: Annotated[
        str, typer.Option(help="Comma-separated splits to score.", callback=check_splits)
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
    from nertool.workflows import evaluate as evaluation

    with boundary.errors():
        result = evaluation.evaluate_model(
            model,
            data,
            split_list(languages),
            splits=split_list(split),
            report_dir=output,
            file_format=file_format,
            strict_tags=strict_tags,
            options=evaluation.ReportOptions(bootstrap=bootstrap, seed=seed, errors=errors, report=report),
        )
        render.print_metrics(result.record, title=f"{model} on {data}")
        if result.report is not None and report:
            render.console.print(f"report: {result.report}")


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
    from nertool.workflows import inspection

    with boundary.errors():
        report = inspection.inspect_source(spec, split_list(languages), model, file_format=file_format)
        render.print_inspection(report)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path("runs/demo"),
) -> None:
    """Train scratch:tiny on the bundled German sample and score de/fr/it/en (offline, ~1 minute)."""
    from nertool.cli import render
    from nertool.workflows import jobs

    with boundary.errors():
        result = jobs.demo_job(output, reporter=render.progress_reporter(True))
        render.print_metrics(result.metrics, title="demo: scratch:tiny trained on the German sample")


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
        str, typer.Option(help="Encoding of the input files.", callback=check_encoding)
    ] = "utf-8",
    batch_size: Annotated[int, typer.Option(help="Most sentences in one batch.", min=1)] = 256,
    max_tokens: Annotated[
        int, typer.Option(help="Most padded subword positions in one batch.", min=1)
    ] = 8192,
    device: Annotated[
        str | None,
        typer.Option(help="cpu, cuda, cuda:1 ... (default: GPU if any).", callback=check_device),
    ] = None,
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 on CPU: ~2x faster, small F1 cost.")] = False,
) -> None:
    """Tag text, CoNLL or JSONL files; one output record per input line/sentence, in order."""
    from nertool.cli import render
    from nertool.workflows import predict as prediction

    with boundary.errors():
        to_file = not is_stdout(output)
        summary = prediction.predict_files(
            model,
            inputs,
            output,
            device=device,
            quantize=quantize,
            max_tokens=max_tokens,
            batch_size=batch_size,
            input_format=input_format,
            output_format=output_format,
            text_mode="file" if doc_per_file else text_mode,
            encoding=encoding,
            progress=partial(render.unit_progress, enabled=to_file),
        )
        if to_file:
            render.console.print(f"{summary.units} units, {summary.entities} entities -> {summary.output}")


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="Run or model folder A.")],
    run_b: Annotated[str, typer.Argument(help="Run or model folder B.")],
    data: Annotated[str, typer.Option(help="Data SPEC both models are scored on (as for evaluate).")],
    languages: Languages = "",
    split: Annotated[str, typer.Option(help="The split to score.", callback=check_split)] = "test",
    bootstrap: Annotated[int, typer.Option(help="Paired bootstrap resamples.", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="JSON file for the result.")] = None,
    file_format: FileFormatOption = "auto",
) -> None:
    """Is A's F1 really different from B's? A paired bootstrap test per language on the same sentences."""
    from nertool.cli import render
    from nertool.workflows import evaluate as evaluation

    with boundary.errors():
        result = evaluation.compare_models(
            run_a,
            run_b,
            data,
            languages=split_list(languages),
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
    from nertool.workflows import jobs

    with boundary.errors():
        config = load_recipe(recipe, overrides or [])
        progress = render.transfer_progress(world_is_main())
        result = jobs.transfer_job(
            config,
            transfer_out(recipe, output),
            overwrite=overwrite,
            keep_checkpoints=keep_checkpoints,
            progress=progress,
        )
        if world_is_main():
            title = f"test F1, rows = training languages ({result.table.selection})"
            render.print_transfer(title, *jobs.transfer_summary(result))


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
    from nertool.workflows import jobs

    with boundary.errors():
        config = load_recipe(recipe, overrides or [])
        run_dir = default_out(recipe, output)
        reporter = render.pretrain_progress(world_is_main())
        result = jobs.pretrain_job(config, run_dir, resume=resume, overwrite=overwrite, reporter=reporter)
        if world_is_main():
            render.print_pretrain(run_dir, result.history)


@app.command()
def push(
    run: Annotated[Path, typer.Argument(help="Run folder (its model/ is uploaded) or model folder.")],
    repo_id: Annotated[str, typer.Argument(help="Hub repository: name (your account) or namespace/name.")],
    private: Annotated[bool, typer.Option("--private", help="Create the repository private.")] = False,
) -> None:
    """Upload a trained model with its card (model/README.md) to the Hugging Face Hub (needs a login)."""
    from nertool.cli import render
    from nertool.workflows import runs

    with boundary.errors():
        result = runs.push_run(run, repo_id, private=private)
        render.console.print(f"pushed {result.folder} -> {result.url}")


def main(argv: list[str] | None = None) -> Callable[..., Any] | None:
    """Console-script entry point."""
    return app(args=argv if argv is not None else sys.argv[1:], prog_name="nertool")
