"""The command line: ``autoresearch <command>`` and ``neurolink autoresearch <command>``.

The commands are thin: they build the SDK objects, call them and render. See ``app.py``.
"""

from __future__ import annotations

import os
import sys

import typer

from autoresearch.cli.app import app
from autoresearch.cli.tasks import REPO_COMMANDS, task_app

__all__ = ["app", "main", "neurolink_app", "neurolink_main"]

neurolink_app = typer.Typer(
    name="neurolink",
    help="NeuroLink-compatible entry point: `neurolink autoresearch <command>`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
neurolink_app.add_typer(app, name="autoresearch")
neurolink_app.add_typer(task_app, name="task")
app.add_typer(task_app, name="task")
for _name, _command in REPO_COMMANDS.items():
    app.command(_name)(_command)


def _take_debug(argv: list[str]) -> list[str]:
    """Accept ``--debug`` anywhere on the line (it is a global option)."""
    if "--debug" in argv:
        os.environ["AUTORESEARCH_DEBUG"] = "1"
        argv = [a for a in argv if a != "--debug"]
    return argv


def main() -> None:
    """The ``autoresearch`` console script."""
    app(args=_take_debug(sys.argv[1:]), prog_name="autoresearch")


def neurolink_main() -> None:
    """The ``neurolink`` console script."""
    neurolink_app(args=_take_debug(sys.argv[1:]), prog_name="neurolink")
