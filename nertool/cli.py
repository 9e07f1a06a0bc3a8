"""The ``nertool`` command line: Typer commands that parse, call a workflow, render its result.

Each command is a thin layer over a plain function in ``workflows`` (which tests call
directly). Any ``NertoolError`` becomes one line on stderr and exit code 1 — never a
traceback. Heavy libraries (torch, transformers) are imported inside commands, so
``nertool --help`` is instant.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from nertool import __version__
from nertool.errors import NertoolError

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
    """Expected failures: one readable line, exit code 1."""
    try:
        yield
    except NertoolError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        raise typer.Exit(130) from None


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
    from nertool import render
    from nertool.config import load_recipe
    from nertool.run_folder import claim_run_folder
    from nertool.workflows import train_run, train_seeds

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
        str, typer.Option(help="Comma-separated languages (default: all in the folder).")
    ] = "",
    split: Annotated[str, typer.Option(help="Comma-separated splits to score.")] = "test",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Report folder (metrics.json, predictions/).")
    ] = None,
    file_format: Annotated[
        str,
        typer.Option("--format", help="Input format (auto, token_tag, panx, idx_token_tag, conll, jsonl)."),
    ] = "auto",
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
    from nertool import render
    from nertool.report import ReportOptions
    from nertool.workflows import evaluate_model

    with _errors():
        options = ReportOptions(bootstrap=bootstrap, seed=seed, errors=errors, report=report)
        result = evaluate_model(
            model, data, _split_list(languages), _split_list(split), output, file_format, strict_tags, options
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
    languages: Annotated[str, typer.Option(help="Comma-separated languages (default: all).")] = "",
    model: Annotated[
        str | None, typer.Option(help="Tokenizer for the alignment audit (run folder or hub id).")
    ] = None,
    file_format: Annotated[str, typer.Option("--format", help="Input format.")] = "auto",
) -> None:
    """Counts per language and split: sentences, labels, entity types, share of O, subword alignment."""
    from nertool import render
    from nertool.inspect import inspect_source

    with _errors():
        render.print_inspection(inspect_source(spec, _split_list(languages), model, file_format))


@app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path("runs/demo"),
) -> None:
    """Train scratch:tiny on the bundled German sample and score de/fr/it/en (offline, ~1 minute)."""
    from nertool import render
    from nertool.config import load_recipe
    from nertool.workflows import train_run

    with _errors():
        recipe = load_recipe(Path(__file__).parent / "resources" / "demo.toml")
        result = train_run(recipe, output, reporter=render.progress_reporter(True))
        render.print_metrics(result.metrics, title="demo: scratch:tiny trained on the German sample")


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Run folder or model folder.")],
    inputs: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or - for standard input.")],
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Output file (default: standard output).")
    ] = None,
    input_format: Annotated[str, typer.Option(help="auto, text, conll or jsonl.")] = "auto",
    output_format: Annotated[str, typer.Option(help="jsonl, conll or spans-tsv.")] = "jsonl",
    text_mode: Annotated[
        str, typer.Option(help="Text units: line (one per line), paragraph (blank-line separated), file.")
    ] = "line",
    doc_per_file: Annotated[bool, typer.Option(help="Shortcut for --text-mode file.")] = False,
    encoding: Annotated[str, typer.Option(help="Encoding of the input files.")] = "utf-8",
    batch_size: Annotated[int, typer.Option(help="Most sentences in one batch.")] = 256,
    max_tokens: Annotated[int, typer.Option(help="Most padded subword positions in one batch.")] = 8192,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: GPU if any).")] = None,
    quantize: Annotated[bool, typer.Option(help="Dynamic int8 on CPU: ~2x faster, small F1 cost.")] = False,
) -> None:
    """Tag text, CoNLL or JSONL files; one output record per input line/sentence, in order."""
    from nertool import render
    from nertool.files import refuse_inputs_as_output
    from nertool.predict import Tagger, predict_files

    with _errors():
        refuse_inputs_as_output(inputs, output)  # before the model loads
        tagger = Tagger.load(model, device, quantize, max_tokens, batch_size)
        with render.unit_progress(enabled=output not in (None, "-")) as advance:
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
        if output not in (None, "-"):
            render.console.print(f"{summary.units} units, {summary.entities} entities -> {summary.output}")


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="Run or model folder A.")],
    run_b: Annotated[str, typer.Argument(help="Run or model folder B.")],
    data: Annotated[str, typer.Option(help="Data SPEC both models are scored on (as for evaluate).")],
    languages: Annotated[str, typer.Option(help="Comma-separated languages (default: all).")] = "",
    split: Annotated[str, typer.Option(help="The split to score.")] = "test",
    bootstrap: Annotated[int, typer.Option(help="Paired bootstrap resamples.", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = 0,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="JSON file for the result.")] = None,
    file_format: Annotated[str, typer.Option("--format", help="Input format.")] = "auto",
) -> None:
    """Is A's F1 really different from B's? A paired bootstrap test per language on the same sentences."""
    from nertool import render
    from nertool.workflows import compare_models

    with _errors():
        result = compare_models(
            run_a, run_b, data, _split_list(languages), split, bootstrap, seed, output, file_format
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
    from nertool import render
    from nertool.config import load_recipe
    from nertool.run_folder import claim_run_folder
    from nertool.transfer_report import summary_notes, summary_rows
    from nertool.transfer_run import run_transfer

    with _errors():
        config = load_recipe(recipe, overrides or [])
        progress = render.transfer_progress(_world_is_main())
        out = _default_out(recipe, output, "" if recipe.stem.endswith("transfer") else "-transfer")
        with claim_run_folder(out, "transfer", overwrite=overwrite):
            result = run_transfer(config, out, progress, keep_checkpoints)
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
    from nertool import render
    from nertool.config import load_recipe
    from nertool.pretrain import pretrain_run
    from nertool.run_folder import claim_run_folder

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
    from nertool import render

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
