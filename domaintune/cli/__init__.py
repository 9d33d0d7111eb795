"""The ``domaintune`` command line: a thin layer over :mod:`domaintune.api`.

One module per command group (``evaluate``, ``search``, ``project``: results,
export and tensorboard; ``data``); this one holds the group, the error
handling and where the library's progress goes. A
:class:`~domaintune.errors.UserError` anywhere becomes one ``Error: ...`` line
and exit status 1, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import click

from domaintune.cli.data import data
from domaintune.cli.evaluate import evaluate
from domaintune.cli.project import export, results, tensorboard
from domaintune.cli.search import search
from domaintune.errors import UserError
from domaintune.tf_runtime import quiet_startup

#: The library logs a search's progress and summary here; the CLI prints it.
PROGRESS_LOGGER = "domaintune.search"


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            resumes = (
                " A search resumes when you rerun the same command (the running trial"
                " from its last saved state, see --checkpoint-minutes)."
                if ctx.invoked_subcommand == "search"
                else ""
            )
            click.echo(f"\nInterrupted.{resumes}", err=True)
            ctx.exit(130)


class _Echo(logging.Handler):
    """Prints a record's message with ``click.echo`` (resolving the stream when
    it prints, as click.echo does: test runners swap it)."""

    def __init__(self, err: bool, accept: Callable[[int], bool]):
        super().__init__()
        self.err, self.accept = err, accept

    def filter(self, record: logging.LogRecord) -> bool:
        return self.accept(record.levelno) and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(record.getMessage(), err=self.err)
        except Exception:
            self.handleError(record)


def _print_progress() -> Callable[[], None]:
    """Route the search's progress records to stdout (its report, as before the
    library logged instead of printing) and its warnings to stderr; return the
    undo, so an in-process caller's logging is left as it was."""
    progress = logging.getLogger(PROGRESS_LOGGER)
    handlers = [
        _Echo(False, lambda level: level < logging.WARNING),
        _Echo(True, lambda level: level >= logging.WARNING),
    ]
    propagate = progress.propagate
    for handler in handlers:
        progress.addHandler(handler)
    progress.propagate = False  # else the root handler prints them on stderr as well

    def undo() -> None:
        for handler in handlers:
            progress.removeHandler(handler)
        progress.propagate = propagate

    return undo


@click.group(cls=_Group)
@click.version_option(package_name="domaintune")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show progress logs of TensorFlow and domaintune, TensorFlow's start-up logging too.",
)
def main(verbose: bool) -> None:
    """Domain-adapt sentence encoders by siamese fine-tuning and KerasTuner search."""
    quiet_startup(verbose)  # before any command imports TensorFlow
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(message)s", stream=sys.stderr
    )
    logging.getLogger("domaintune").setLevel(logging.INFO)
    click.get_current_context().call_on_close(_print_progress())


for _command in (evaluate, search, results, export, tensorboard, data):
    main.add_command(_command)
