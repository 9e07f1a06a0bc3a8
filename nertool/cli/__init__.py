"""The ``nertool`` command line: ``commands``, their ``options``, the error ``boundary``, ``render``."""

from nertool.cli.commands import app, main

__all__ = ["app", "main"]
