"""Where the CLI's log lines go: one rich handler on standard error; the libraries below kept quiet.

``transformers``, ``accelerate`` and ``datasets`` log (and draw download bars) on their own; the
command line shows only their errors, so its own warnings (a repaired tag, a skipped split) and
progress bars are what a user reads. On a terminal the lines are rich's; elsewhere (a log file, a
pipe, a test runner) each record is one plain line, never wrapped at 80 columns inside a path.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO


class PlainStderr(logging.StreamHandler):
    """``LEVEL    message`` lines on ``sys.stderr`` as it is at each record (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging(level: int) -> None:
    """Log ``nertool`` at ``level`` on stderr; silence the progress bars and logs of the libraries."""
    from rich.console import Console
    from rich.logging import RichHandler

    stderr = Console(stderr=True)
    logger = logging.getLogger("nertool")
    terminal = RichHandler(show_time=False, show_path=False, console=stderr)
    logger.handlers = [terminal if stderr.is_terminal else PlainStderr()]
    logger.setLevel(level)
    for noisy in ("transformers", "accelerate", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # imported before the CLI ran (tests, embedding)
        sys.modules["transformers"].utils.logging.disable_progress_bar()
