"""Tagging text with a trained run: ``Tagger`` (Python API) and the streaming ``predict`` job.

text → words with character offsets (``textsplit``) → the shared word-level inference path
(``inference``: windows, length-sorted token-budgeted batches) → word tags → entity spans
whose ``text[start:end]`` is taken from the original string. Inputs are read and written in
chunks, so memory stays flat on files of any size, and every input unit gets exactly one
output record, in input order.

The forward pass is a backend's ``Forward`` (batch → logits): the torch model, or an ONNX Runtime
session over the folder ``nertool export`` wrote; everything before and after it is shared, so
both backends window, batch and merge words identically.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from nertool.errors import ModelError
from nertool.files import refuse_inputs_as_output
from nertool.labels import LabelMap
from nertool.model.align import Feature, label_strategy_of
from nertool.model.features import encode
from nertool.model.inference import Forward, model_max_length, predict_with, tags_of, torch_forward
from nertool.model.onnx_backend import ONNX_FILE, Backend, export_folder, find_export, load_exported
from nertool.predict.prefetch import prefetched
from nertool.predict.readers import (
    Entity,
    TaggedUnit,
    Unit,
    iter_units,
    tag_unit,
    unit_from_text,
    unit_from_tokens,
)
from nertool.predict.writers import open_writer

CHUNK_UNITS = 2048


@dataclass(frozen=True)
class BatchLimits:
    """Most padded positions and most sentences in one forward pass, by device.

    On CUDA a batch of 1,024 PAN-X sentences (~30 pieces each) in bf16 keeps the device busy. On a
    CPU the work per real token is the same at any batch size, so what counts is padding: a chunk's
    sentences are sorted by length and cut into batches, and a batch of 256 consecutive sentences
    of a 2,048-sentence chunk spans an eighth of the length range (18 % of its positions padding
    on WikiANN de), one of 32 a sixty-fourth (6 %). Measured on 8,000 sentences, one thread,
    ``scratch:small``: 24.6-25.5 s at 256, 21.8 s at 64, 32 and 16 (smaller matmuls start to cost
    what less padding saves).
    """

    max_tokens: int
    max_batch: int


CPU_LIMITS = BatchLimits(max_tokens=8192, max_batch=32)
CUDA_LIMITS = BatchLimits(max_tokens=65_536, max_batch=1024)


def pick_device(device: str | None, backend: Backend = "torch") -> str:
    """``--device`` if given, else the CPU for the ONNX backend (without loading torch to ask) and
    the GPU for the others when there is one."""
    if device:
        return device
    if backend == "onnx":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_type(device: str) -> str:
    """``cuda`` of ``cuda:1``: what the batch limits and the backend choice go by."""
    return device.split(":", 1)[0]


def quantize(model: Any) -> Any:
    """Dynamic int8 Linear layers: about 2× faster CPU inference for a small F1 cost."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch announces a future move of quantized tensors
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


@dataclass(frozen=True)
class Engine:
    """One backend's forward pass and the model config it serves (positions for the window size).

    ``model`` is the torch module or the ONNX Runtime session behind ``forward``.
    """

    backend: str
    forward: Forward
    config: Any
    model: Any


@dataclass(frozen=True)
class Encoded:
    """A chunk of units tokenised and aligned, ready for the forward pass (what prefetch hands over)."""

    units: Sequence[Unit]
    grouped: list[list[Feature]]


@dataclass
class Tagger:
    """A loaded model ready to tag words or raw text, through torch or ONNX Runtime.

    ``Tagger(model, tokenizer, labels)`` with a torch token classifier (in memory, e.g. just
    trained) still works: the model is wrapped as the torch engine.
    """

    engine: Engine
    tokenizer: Any
    labels: LabelMap
    max_tokens: int = CPU_LIMITS.max_tokens
    max_batch: int = CPU_LIMITS.max_batch
    prefetch: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.engine, Engine):  # a torch model given directly
            model: Any = self.engine
            self.engine = Engine("torch", torch_forward(model), model.config, model)

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        device: str | None = None,
        quantized: bool = False,
        max_tokens: int | None = None,
        max_batch: int | None = None,
        *,
        backend: Backend = "torch",
        prefetch: bool | None = None,
        threads: int | None = None,
    ) -> Tagger:
        """A run (or model, or ONNX) folder's tagger; ``backend="auto"`` takes ONNX where an export exists.

        Batch limits default by device (``CUDA_LIMITS``, ``CPU_LIMITS``); ``prefetch`` (tokenise the
        next chunk while the model runs this one) defaults to on for CUDA only. ``threads``: torch
        is set to that many (torch backend) or the ONNX session gets them; None leaves torch as
        it is and gives an ONNX session torch's count. The ONNX backend on the CPU never imports
        torch, which is most of a ``predict`` process's start-up.
        """
        target = pick_device(device, backend)
        chosen = choose_backend(backend, run_dir, target, quantized)
        if chosen == "onnx":
            engine, tokenizer, labels = _onnx_engine(run_dir, quantized, threads)
        else:
            engine, tokenizer, labels = _torch_engine(run_dir, target, quantized, threads)
        limits = CUDA_LIMITS if device_type(target) == "cuda" else CPU_LIMITS
        return cls(
            engine,
            tokenizer,
            labels,
            max_tokens or limits.max_tokens,
            max_batch or limits.max_batch,
            prefetch if prefetch is not None else device_type(target) == "cuda",
        )

    @property
    def model(self) -> Any:
        """The torch module or ONNX Runtime session that tags."""
        return self.engine.model

    def encode_units(self, units: Sequence[Unit]) -> Encoded:
        """Tokenise and align a chunk (host work only: safe on a worker thread)."""
        words = [u.words for u in units]
        max_length = model_max_length(self.engine, self.tokenizer)
        strategy = label_strategy_of(self.engine)  # read each word where training labelled it
        return Encoded(units, encode(words, self.tokenizer, max_length=max_length, strategy=strategy))

    def tag_encoded(self, encoded: Encoded) -> list[TaggedUnit]:
        """The forward pass over an encoded chunk, and its units' tags and entities."""
        predictions = predict_with(
            self.engine.forward,
            encoded.grouped,
            [len(u.words) for u in encoded.units],
            pad_id=self.tokenizer.pad_token_id,
            max_tokens=self.max_tokens,
            max_batch=self.max_batch,
        )
        return [
            tag_unit(unit, tags_of(p, self.labels.names), [s if s is not None else 0.0 for s in p.scores])
            for unit, p in zip(encoded.units, predictions, strict=True)
        ]

    def tag_units(self, units: Sequence[Unit]) -> list[TaggedUnit]:
        """Tag a batch of units (already split into words); same order out as in."""
        return self.tag_encoded(self.encode_units(units))

    @overload
    def tag(self, texts: str) -> tuple[Entity, ...]: ...
    @overload
    def tag(self, texts: list[str] | tuple[str, ...]) -> list[tuple[Entity, ...]]: ...

    def tag(self, texts: str | list[str] | tuple[str, ...]) -> tuple[Entity, ...] | list[tuple[Entity, ...]]:
        """Entities of raw text, with character offsets into that text.

        One string is one document and gives its entities; a list (or tuple) of strings gives
        one tuple of entities per document, in order. Anything else is a ``TypeError``: a
        string must not be read as a list of one-letter documents, nor a generator half-used.

        >>> tagger = Tagger.load("runs/de")                      # doctest: +SKIP
        >>> tagger.tag("Angela Merkel besuchte Paris")           # doctest: +SKIP
        (Entity(start=0, end=13, label='PER', text='Angela Merkel', score=0.98),
         Entity(start=23, end=28, label='LOC', text='Paris', score=0.97))
        >>> [len(found) for found in tagger.tag(["Paris", "nichts"])]  # doctest: +SKIP
        [1, 0]
        """
        if isinstance(texts, str):
            return self.tag([texts])[0]
        documents = _documents(texts, "tag", "a string or a list of strings", item=_is_str)
        units = [unit_from_text(text, "api", index + 1) for index, text in enumerate(documents)]
        return [tagged.entities for tagged in self.tag_units(units)]

    @overload
    def tag_words(self, words: list[str] | tuple[str, ...]) -> tuple[str, ...]: ...
    @overload
    def tag_words(self, words: list[list[str]] | list[tuple[str, ...]]) -> list[tuple[str, ...]]: ...

    def tag_words(self, words: Sequence[Any]) -> tuple[str, ...] | list[tuple[str, ...]]:
        """IOB2 tags of pre-split words, one per word (as ``evaluate`` scores them).

        A list of strings is one sentence and gives its tags; a list of word lists gives one
        tuple of tags per sentence (an empty list: no sentences). Anything else is a ``TypeError``.

        >>> tagger.tag_words(["Angela", "Merkel", "besuchte", "Paris"])  # doctest: +SKIP
        ('B-PER', 'I-PER', 'O', 'B-LOC')
        >>> tagger.tag_words([["Paris"], ["nichts", "hier"]])          # doctest: +SKIP
        [('B-LOC',), ('O', 'O')]
        """
        wanted = "a list of words or a list of word lists"
        if _is_one_sentence(words):
            return self._word_tags([_documents(words, "tag_words", wanted, item=_is_str)])[0]
        return self._word_tags(_documents(words, "tag_words", wanted, item=_is_word_list))

    def _word_tags(self, sentences: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
        units = [unit_from_tokens(words, "api", index + 1) for index, words in enumerate(sentences)]
        return [tagged.tags for tagged in self.tag_units(units)]


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_one_sentence(value: Any) -> bool:
    """A non-empty list of which no entry is itself a list: one sentence's words (or a mistake in them)."""
    return _is_sequence(value) and bool(value) and not any(_is_sequence(entry) for entry in value)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _is_word_list(value: Any) -> bool:
    return _is_sequence(value) and all(isinstance(word, str) for word in value)


def _documents(value: Any, method: str, wanted: str, *, item: Callable[[Any], bool]) -> list[Any]:
    """``value`` as a list whose every entry passes ``item``, or a ``TypeError`` saying what was given."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"Tagger.{method}() takes {wanted}, not {type(value).__name__}")
    for index, entry in enumerate(value):
        if not item(entry):
            raise TypeError(
                f"Tagger.{method}() takes {wanted}; item {index} is {type(entry).__name__} {entry!r:.40}"
            )
    return list(value)


def choose_backend(backend: Backend, run_dir: str | Path, device: str, quantized: bool) -> str:
    """``torch`` or ``onnx``: ``auto`` takes ONNX only on CPU, with an export and onnxruntime at hand."""
    if backend == "torch":
        return "torch"
    if device_type(device) != "cpu":
        if backend == "onnx":
            raise ModelError(
                f"the ONNX backend runs on the CPU, not {device}; use --device cpu or --backend torch"
            )
        return "torch"
    if backend == "onnx":
        return "onnx"
    return "onnx" if find_export(run_dir, quantized) is not None and _has_onnxruntime() else "torch"


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _torch_engine(
    run_dir: str | Path, device: str, quantized: bool, threads: int | None
) -> tuple[Engine, Any, LabelMap]:
    """The torch model on ``device``: int8 Linear layers on CPU with ``quantized``, bf16 on CUDA."""
    import torch

    from nertool.model.build import load_trained
    from nertool.threads import set_threads

    if (Path(run_dir) / ONNX_FILE).is_file():
        raise ModelError(f"{run_dir}: an ONNX export (model.onnx, no torch weights); use --backend onnx")
    if threads is not None:
        set_threads(threads)
    model, tokenizer, labels = load_trained(run_dir)
    target = torch.device(device)
    model.to(target)
    if quantized and target.type == "cpu":
        model = quantize(model)
    elif target.type == "cuda" and torch.cuda.is_bf16_supported():
        model.to(torch.bfloat16)
    model.eval()
    return Engine("torch", torch_forward(model), model.config, model), tokenizer, labels


def _onnx_engine(run_dir: str | Path, quantized: bool, threads: int | None) -> tuple[Engine, Any, LabelMap]:
    """The ONNX export of ``run_dir`` (or ``run_dir`` itself, an ONNX folder) on ONNX Runtime.

    The session gets ``threads`` intra-op threads, else as many as torch has (so both backends
    use the same cores), else, with torch not loaded, nertool's thread policy.
    """
    folder = find_export(run_dir, quantized)
    if folder is None:
        flag = " --quantize" if quantized else ""
        expected = export_folder(Path(run_dir), quantized) / ONNX_FILE
        raise ModelError(
            f"{run_dir}: no ONNX export ({expected} not found); run "
            f"nertool export {run_dir} --format onnx{flag} first, or use --backend torch"
        )
    exported = load_exported(folder, threads or _torch_threads(), quantized)
    engine = Engine("onnx", exported.forward, exported.config, exported.forward.session)
    return engine, exported.tokenizer, exported.labels


def _torch_threads() -> int:
    """torch's thread count where torch is loaded (it is not imported for this), else the policy's."""
    import sys

    from nertool.threads import chosen_threads

    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else chosen_threads()


def chunks(units: Iterator[Unit], size: int) -> Iterator[list[Unit]]:
    while chunk := list(itertools.islice(units, size)):
        yield chunk


@dataclass(frozen=True)
class PredictSummary:
    units: int
    entities: int
    output: str


def predict_files(
    tagger: Tagger,
    inputs: Sequence[str],
    output: str | None,
    *,
    input_format: str = "auto",
    output_format: str = "jsonl",
    text_mode: str = "line",
    encoding: str = "utf-8",
    on_chunk: Callable[[int], None] | None = None,
) -> PredictSummary:
    """Tag every unit of ``inputs`` and write them to ``output`` (stdout when None or ``-``).

    An output that is an input, or lies in an input folder, is refused: it would replace the
    input, or be read back and tagged again on the next run. With ``tagger.prefetch`` the next
    chunk is read and tokenised on a worker thread while the model tags this one.
    """
    refuse_inputs_as_output(inputs, output)
    units = iter_units(inputs, input_format, text_mode, encoding=encoding)  # type: ignore[arg-type]
    encoded = (tagger.encode_units(chunk) for chunk in chunks(units, CHUNK_UNITS))
    with open_writer(output, output_format) as writer:  # type: ignore[arg-type]
        for ready in prefetched(encoded) if tagger.prefetch else encoded:
            for tagged in tagger.tag_encoded(ready):
                writer.write(tagged)
            if on_chunk is not None:
                on_chunk(len(ready.units))
    return PredictSummary(writer.units_written, writer.entities_written, output or "-")
