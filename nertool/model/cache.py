"""An on-disk cache of training features, so a rerun, a transfer setting or a second process
reuses them instead of tokenising the corpus again.

An entry is a folder of ``.npy`` files (one per ``FeatureArrays`` field) and a ``meta.json``,
named by a key over everything the features depend on: the tokenizer (its full serialised
model, not its name: a retrained ``scratch:`` tokenizer is another tokenizer), every sentence's
tokens and tags, ``max_length``, the label list, the label strategy and the format version.
Entries are written into a temporary folder and renamed into place, so a reader sees a whole
entry or none; they are memory-mapped on read (``np.load(mmap_mode="r")``), so a process pages
in only the rows it reads. An entry whose files do not match its ``meta.json`` (sizes, shapes,
checksums) is damaged: it is rebuilt, never trusted. A cache that cannot be written (read-only
or full disk) is logged and skipped: the cache only saves time, it never changes a result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nertool.model.arrays import FeatureArrays

log = logging.getLogger("nertool")

FORMAT_VERSION = 1  # bump when the features of the same inputs would change
CACHE_ENV = "NERTOOL_CACHE"  # root of nertool's caches; features go in its features/ folder
META = "meta.json"


def cache_root(setting: str) -> Path | None:
    """Where features are cached for ``data.cache_dir``: ``auto``, ``off`` (None) or a folder."""
    if setting == "off":
        return None
    if setting != "auto":
        return Path(setting).expanduser()
    base = os.environ.get(CACHE_ENV)
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "nertool") / "features"


# ------------------------------------------------------------------ the key


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A digest of what the tokenizer does: its serialised model and pipeline, or its vocabulary."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode())
    specials = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    digest.update(repr(specials).encode())
    return digest.hexdigest()


def feature_key(
    tokenizer: Any,
    sentences: Iterable[Any],
    *,
    max_length: int,
    label_names: Sequence[str] | None,
    strategy: str,
) -> str:
    """The cache key of the features of ``sentences`` (word lists or sentences with ``tags``)."""
    digest = hashlib.sha256()
    settings = {
        "format": FORMAT_VERSION,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_length": max_length,
        "labels": list(label_names) if label_names is not None else None,
        "strategy": strategy,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for sentence in sentences:
        words = sentence.tokens if hasattr(sentence, "tokens") else sentence
        tags = sentence.tags if hasattr(sentence, "tags") and label_names is not None else ()
        # unit/record separators cannot occur inside a word read from a corpus line
        digest.update(("\x1f".join(words) + "\x1d" + "\x1f".join(tags) + "\x1e").encode())
    return digest.hexdigest()[:40]


# ------------------------------------------------------------------ read and write


def cached_features(root: Path | None, key: str, build: Callable[[], FeatureArrays]) -> FeatureArrays:
    """The entry ``key`` under ``root`` (memory-mapped), built and stored first when missing or damaged."""
    if root is None:
        return build()
    folder = root / key
    found = read_entry(folder)
    if found is not None:
        log.info("features: read from the cache (%s)", folder)
        return found
    features = build()
    try:
        write_entry(folder, features)
    except OSError as error:
        log.warning("features: not cached in %s (%s); they are used without the cache", root, error)
        return features
    return read_entry(folder) or features


def read_entry(folder: Path) -> FeatureArrays | None:
    """A whole, undamaged entry, memory-mapped; None when it is missing or does not check out."""
    if not (folder / META).is_file():
        return None
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            return None
        arrays = {name: _checked_array(folder, name, spec) for name, spec in meta["arrays"].items()}
        features = FeatureArrays(
            input_ids=arrays["input_ids"],
            word_ids=arrays["word_ids"],
            labels=arrays.get("labels"),
            offsets=arrays["offsets"],
            sentence=arrays["sentence"],
            core=arrays["core"],
            skip_piece=meta["skip_piece"],
        )
        _check_consistent(features)
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("features: the cache entry %s is damaged (%s); it is rebuilt", folder, error)
        return None
    return features


def write_entry(folder: Path, features: FeatureArrays) -> None:
    """Write an entry whole: files in a temporary folder beside it, then one rename."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        specs = {}
        for name, array in features.fields().items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
            specs[name] = {
                "dtype": str(array.dtype),
                "shape": list(array.shape),
                "sha256": _file_digest(tmp / f"{name}.npy"),
            }
        meta = {"format": FORMAT_VERSION, "skip_piece": features.skip_piece, "arrays": specs}
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _move_into_place(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, folder: Path) -> None:
    """Rename ``tmp`` to ``folder``; a damaged entry there is replaced, a whole one (another
    process finished first) is kept."""
    if folder.exists():
        if read_entry(folder) is not None:
            return
        shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:
        if read_entry(folder) is None:  # not a concurrent writer's whole entry: a real failure
            raise


def _checked_array(folder: Path, name: str, spec: dict[str, Any]) -> np.ndarray:
    path = folder / f"{name}.npy"
    if _file_digest(path) != spec["sha256"]:
        raise ValueError(f"{path.name} does not match its checksum")
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if str(array.dtype) != spec["dtype"] or list(array.shape) != spec["shape"]:
        raise ValueError(
            f"{path.name} is {array.dtype} {list(array.shape)}, not {spec['dtype']} {spec['shape']}"
        )
    return array


def _check_consistent(features: FeatureArrays) -> None:
    """The arrays describe whole windows: offsets rise from 0 to the number of positions."""
    offsets = features.offsets
    positions = len(features.input_ids)
    if len(offsets) != len(features) + 1 or offsets[0] != 0 or offsets[-1] != positions:
        raise ValueError("window offsets do not cover the positions")
    if np.any(np.diff(offsets) < 0) or len(features.word_ids) != positions:
        raise ValueError("window offsets are not in order")
    if features.labels is not None and len(features.labels) != positions:
        raise ValueError("labels and positions differ in number")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
