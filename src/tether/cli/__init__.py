"""The `tether` command line: a Typer app assembled from one module per command group."""

from tether.cli.app import app, main

__all__ = ["app", "main"]
