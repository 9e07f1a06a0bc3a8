"""The ``nertool`` command line: Typer commands that parse, call a workflow, render its result.

Each command parses its arguments, calls one function in ``workflows`` by keyword (which tests
call directly, or replace by a stub), and hands the result to ``render``. Heavy libraries
(torch, transformers) are imported inside commands, so ``nertool --help`` is instant.

Exit codes: ``boundary`` (the one error boundary); option types and checks: ``options``.
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
from nertool.cli import options as opt
from nertool.cli.logs import setup_logging

HELP = (
    "nertool trains and scores named-entity recognition models in many languages (XLM-R, or the "
    "offline scratch: models). Fine-tune a model from a recipe with train, score it per language with "
    "evaluate, test whether one model really beats another with compare, measure cross-lingual "
    "transfer with transfer, continue pre-training on raw text with pretrain, tag text files with "
    "predict, and look at data with data inspect; demo runs it all offline in about a minute. "
    "Each command's --help says what it writes."
)
app = typer.Typer(no_args_is_help=True, add_completion=True, help=HELP, pretty_exceptions_enable=False)
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
    setup_logging(logging.WARNING if quiet else logging.INFO)


@app.command()
def train(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML file (see recipes/).")],
    output: opt.OutDir = None,
    overrides: opt.Overrides = None,
    resume: opt.Resume = False,
    overwrite: opt.Overwrite = False,
    as_json: opt.JsonOutput = False,
    threads: opt.Threads = None,
) -> None:
    """Fine-tune a token-classification model from a recipe and score it on test and validation.

    Writes the run folder (-o, default runs/<recipe name>): model/ (the best
    model and its tokenizer), metrics.json (the scores it prints), config.toml
    (the recipe as run), data_manifest.json, train_log.jsonl.
    """
    from nertool.cli import render
    from nertool.config import load_recipe
    from nertool.workflows import jobs

    opt.use_threads(threads)
    with boundary.errors():
        config = load_recipe(recipe, overrides or [])
        run_dir = opt.default_out(recipe, output)
        reporter = render.progress_reporter(opt.world_is_main())
        result = jobs.train_job(config, run_dir, resume=resume, overwrite=overwrite, reporter=reporter)
        if opt.world_is_main() and as_json:
            render.print_json(result.metrics)
        elif opt.world_is_main() and config.train.seeds:
            render.print_seed_metrics(result.metrics, title=f"{run_dir} — F1 over seeds {config.train.seeds}")
        elif opt.world_is_main():
            render.print_metrics(result.metrics, title=f"{run_dir} — test/validation F1")


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Run folder or model folder.")],
    data: opt.DataSpec,
    languages: opt.Languages = "",
    split: opt.Splits = "test",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Report folder (metrics.json, predictions/).")
    ] = None,
    file_format: opt.FileFormatOption = "auto",
    strict_tags: opt.StrictTags = False,
    label_map: opt.LabelMapSpec = "",
    unknown_types: opt.UnknownTypesOption = "error",
    bootstrap: opt.Bootstrap = 0,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    errors: opt.Errors = True,
    report: opt.Report = True,
    as_json: opt.JsonOutput = False,
    threads: opt.Threads = None,
) -> None:
    """Score a trained model per language and split (seqeval, strict IOB2 by default) and explain it.

    Prints the scores. With -o it writes to that folder: metrics.json,
    predictions/<lang>-<split>.conll, errors.md and errors.json (unless
    --no-errors), report.md, report.json, confusion/ tables and heatmaps (unless
    --no-report).
    """
    from nertool.cli import render
    from nertool.workflows import evaluate as evaluation

    opt.use_threads(threads)
    with boundary.errors():
        with render.evaluation_progress() as progress:  # the bar is gone before the table prints
            result = evaluation.evaluate_model(
                model,
                data,
                opt.split_list(languages),
                splits=opt.split_list(split),
                report_dir=output,
                file_format=file_format,
                strict_tags=strict_tags,
                options=evaluation.ReportOptions(
                    bootstrap=bootstrap, seed=seed, errors=errors, report=report
                ),
                progress=progress,
                label_map=opt.parse_label_map(label_map),
                unknown_types=unknown_types,
            )
        if as_json:
            render.print_json(result.record)
            return
        render.print_metrics(result.record, title=f"{model} on {data}")
        if result.report is not None and report:
            render.console.print(f"report: {result.report}")


@data_app.command("inspect")
def data_inspect(
    spec: Annotated[
        str, typer.Argument(help="Data SPEC (file, corpus folder, hub:NAME[:CONFIG], 'sample').")
    ],
    languages: opt.Languages = "",
    model: Annotated[
        str | None, typer.Option(help="Tokenizer for the alignment audit (run folder or hub id).")
    ] = None,
    file_format: opt.FileFormatOption = "auto",
    as_json: opt.JsonOutput = False,
) -> None:
    """Counts per language and split: sentences, tokens, entity types, share of O, subword alignment.

    Reads the data and writes nothing; prints the counts (with --model, the
    alignment audit too).
    """
    from nertool.cli import render
    from nertool.workflows import inspection

    with boundary.errors():
        report = inspection.inspect_source(spec, opt.split_list(languages), model, file_format=file_format)
        render.print_json(report) if as_json else render.print_inspection(report)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path("runs/demo"),
    as_json: opt.JsonOutput = False,
    threads: opt.Threads = None,
) -> None:
    """Train scratch:tiny on the bundled German sample and score de/fr/it/en (offline, ~1 minute).

    Writes a run folder as train does (-o, default runs/demo) and prints the
    scores.
    """
    from nertool.cli import render
    from nertool.workflows import jobs

    opt.use_threads(threads)
    with boundary.errors():
        result = jobs.demo_job(output, reporter=render.progress_reporter(True))
        if as_json:
            render.print_json(result.metrics)
        else:
            render.print_metrics(result.metrics, title="demo: scratch:tiny trained on the German sample")


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Run folder or model folder.")],
    inputs: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or - for standard input.")],
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Output file (default: standard output).")
    ] = None,
    input_format: opt.InputFormatOption = "auto",
    output_format: opt.OutputFormatOption = "jsonl",
    text_mode: opt.TextModeOption = "line",
    doc_per_file: Annotated[bool, typer.Option(help="Shortcut for --text-mode file.")] = False,
    encoding: opt.Encoding = "utf-8",
    batch_size: Annotated[
        int | None,
        typer.Option(help="Most sentences in one batch (default: 32 on CPU, 1024 on CUDA).", min=1),
    ] = None,
    max_tokens: opt.DeviceMaxTokens = None,
    device: opt.Device = None,
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 on CPU: ~2x faster, small F1 cost.")] = False,
    threads: opt.Threads = None,
    backend: opt.BackendOption = "torch",
) -> None:
    """Tag text, CoNLL or JSONL files with a trained model.

    Writes one record per input unit (line, paragraph, file or sentence), in
    input order, to -o or to standard output: JSON lines, CoNLL columns or
    spans-tsv rows.
    """
    from nertool.cli import render
    from nertool.workflows import predict as prediction

    with boundary.errors():  # threads go to the backend that computes (the ONNX one never loads torch)
        to_file = not opt.is_stdout(output)
        summary = prediction.predict_files(
            model,
            inputs,
            output,
            device=device,
            quantize=quantize,
            max_tokens=max_tokens,
            batch_size=batch_size,
            backend=backend,
            threads=threads,
            input_format=input_format,
            output_format=output_format,
            text_mode="file" if doc_per_file else text_mode,
            encoding=encoding,
            progress=partial(render.unit_progress, enabled=to_file),
        )
        if to_file:
            render.console.print(f"{summary.units} units, {summary.entities} entities -> {summary.output}")


@app.command()
def export(
    run: Annotated[str, typer.Argument(help="Run folder or model folder.")],
    export_format: opt.ExportFormatOption = "onnx",
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output folder (default: RUN/onnx, or RUN/onnx-int8 with --quantize)."
        ),
    ] = None,
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 quantisation of the exported graph.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier export in the output folder.")] = False,
) -> None:
    """Export a trained model for predict --backend onnx (ONNX Runtime on CPU).

    Writes the output folder: model.onnx, the model's config and tokenizer
    files, onnx_export.json (how it was exported; the check that its logits
    match the torch model's). Refuses to write if they do not.
    """
    from nertool.cli import render
    from nertool.workflows import export as exporting

    with boundary.errors():
        result = exporting.export_model(
            run, output, format=export_format, quantize=quantize, overwrite=overwrite
        )
        render.print_export(result)


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="Run or model folder A.")],
    run_b: Annotated[str, typer.Argument(help="Run or model folder B.")],
    data: opt.DataSpec,
    languages: opt.Languages = "",
    split: opt.Split = "test",
    bootstrap: Annotated[int, typer.Option(help="Paired bootstrap resamples.", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="JSON file for the result.")] = None,
    file_format: opt.FileFormatOption = "auto",
    as_json: opt.JsonOutput = False,
) -> None:
    """Is A's F1 really different from B's? A paired bootstrap test per language on the same sentences.

    Prints F1 of A and B, their difference with its 95% interval and the
    p-value; -o writes the same as a JSON file.
    """
    from nertool.cli import render
    from nertool.workflows import evaluate as evaluation

    with boundary.errors():
        result = evaluation.compare_models(
            run_a,
            run_b,
            data,
            languages=opt.split_list(languages),
            split=split,
            n=bootstrap,
            seed=seed,
            output=output,
            file_format=file_format,
        )
        render.print_json(result) if as_json else render.print_comparison(result)


@app.command()
def transfer(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML file with a transfer section (see recipes/).")],
    output: opt.OutDir = None,
    overrides: opt.Overrides = None,
    keep_checkpoints: Annotated[bool, typer.Option(help="Keep each finished run's checkpoint/.")] = False,
    overwrite: opt.Overwrite = False,
    as_json: opt.JsonOutput = False,
    threads: opt.Threads = None,
) -> None:
    """Cross-lingual transfer: a model per training-language set, test F1 per language, sample-size curve.

    Writes to -o (default runs/<recipe name>-transfer): runs/<setting>/ (a run
    folder each), transfer.json, transfer.md, transfer.csv, transfer.png and,
    with a curve, curve.json and curve.png. Prints the table.
    """
    from nertool.cli import render
    from nertool.config import load_recipe
    from nertool.workflows import jobs

    opt.use_threads(threads)
    with boundary.errors():
        config = load_recipe(recipe, overrides or [])
        progress = render.transfer_progress(opt.world_is_main())
        result = jobs.transfer_job(
            config,
            opt.transfer_out(recipe, output),
            overwrite=overwrite,
            keep_checkpoints=keep_checkpoints,
            progress=progress,
        )
        if opt.world_is_main() and as_json:
            render.print_transfer_json(result.out_dir)
        elif opt.world_is_main():
            title = f"test F1, rows = training languages ({result.table.selection})"
            render.print_transfer(title, *jobs.transfer_summary(result))


@app.command()
def pretrain(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML with a \\[pretrain] section (see recipes/).")],
    output: opt.OutDir = None,
    overrides: opt.Overrides = None,
    resume: opt.Resume = False,
    overwrite: opt.Overwrite = False,
    as_json: opt.JsonOutput = False,
    threads: opt.Threads = None,
) -> None:
    """Masked-LM (continued) pre-training on raw text, for a train recipe's model.name to start from.

    Writes the run folder (-o, default runs/<recipe name>): model/ (the encoder
    and its tokenizer), config.toml, data_manifest.json, train_log.jsonl. Prints
    the held-out loss at each evaluation.
    """
    from nertool.cli import render
    from nertool.config import load_recipe
    from nertool.workflows import jobs

    opt.use_threads(threads)
    with boundary.errors():
        config = load_recipe(recipe, overrides or [])
        run_dir = opt.default_out(recipe, output)
        reporter = render.pretrain_progress(opt.world_is_main())
        result = jobs.pretrain_job(config, run_dir, resume=resume, overwrite=overwrite, reporter=reporter)
        if opt.world_is_main() and as_json:
            render.print_json(result)
        elif opt.world_is_main():
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
