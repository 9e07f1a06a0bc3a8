"""The ``nertool`` command line (``commands``) and its terminal rendering (``render``)."""

from nertool.cli.commands import app, main

__all__ = ["app", "main"]
