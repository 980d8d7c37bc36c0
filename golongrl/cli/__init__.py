"""The ``golongrl`` command line: one typer app; each area registers its own commands.

Every command lives in this package (``golongrl/cli/<area>.py``), so the library packages never
import the CLI or each other upward just to offer a command. Each module exposes
``register(app, data_app)``; this file only lists them, so ``golongrl --help`` is the table of
contents of the project.
"""

from __future__ import annotations

import importlib

import typer

from golongrl.cli import errors
from golongrl.cli.errors import ErrorReportingGroup

app = typer.Typer(
    name="golongrl",
    help="Long-context RL with verifiable rewards: data, rewards, training, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    cls=ErrorReportingGroup,
)
data_app = typer.Typer(
    help="Build, validate, inspect and export golongrl datasets.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of every failure, not one line."),
) -> None:
    """Long-context RL with verifiable rewards: data, rewards, training, evaluation.

    An expected failure (bad file, config or option; unreachable server; full disk) prints one
    line naming what failed, where, and what to do, and exits with status 2."""
    errors.debug = debug

#: Modules that define ``register(app, data_app)``; add a line when an area gains commands.
COMMAND_MODULES: tuple[str, ...] = (
    "golongrl.cli.score",
    "golongrl.cli.data",
    "golongrl.cli.training",
    "golongrl.cli.simulation",
    "golongrl.cli.evaluation",
)

for _module_name in COMMAND_MODULES:
    importlib.import_module(_module_name).register(app, data_app)


def main() -> None:  # pragma: no cover - console entry point
    app()
