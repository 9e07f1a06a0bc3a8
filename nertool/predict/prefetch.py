"""One item ahead on a worker thread: read and tokenise chunk k+1 while the model runs chunk k.

On a GPU the forward pass of a chunk is short and the host-side work (reading, the Rust tokenizer,
alignment in Python) would leave the device idle between chunks; a one-deep queue overlaps them
while holding at most two chunks in memory. The worker's exceptions (a bad input line) are raised
in the consumer, in order; a consumer that stops early (a full disk) stops the worker too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
_POLL_S = 0.05


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items`` in order, each produced on a worker thread while the previous one is consumed."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(items, ready, stop), name="prefetch", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]  # anything but the two markers is an item of ``items``
    finally:
        stop.set()
        worker.join()


def _produce(items: Iterator[T], ready: queue.Queue[object], stop: threading.Event) -> None:
    try:
        for item in items:
            if not _put(ready, item, stop):
                return
        _put(ready, _DONE, stop)
    except BaseException as error:  # handed to the consumer, who raises it in its own thread
        _put(ready, _Failed(error), stop)
    finally:
        close = getattr(items, "close", None)
        if close is not None:  # a generator's open files are closed here, in the thread that used them
            close()


def _put(ready: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Wait for room in the queue; False when the consumer has gone."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False
