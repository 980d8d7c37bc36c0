"""The CLI's one error path: an expected failure is one line (what, where, what to do) and a
non-zero exit; anything else is a bug and keeps its traceback. ``golongrl --debug`` shows the
traceback of every failure.

The exception types below are the ones library code raises for bad input, a bad environment or
an unreachable server; each already names its file, row and field or key, so the line is the
message with a hint added where the message alone does not say what to do.
"""

from __future__ import annotations

import errno
import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

#: Exit status of an expected failure (usage errors from click also exit 2).
FAILURE_EXIT = 2
#: Set from the global ``--debug`` option on every invocation.
debug = False

_ERRNO_HINTS = {
    errno.ENOSPC: "the disk is full: free space and rerun the same command (finished work is kept)",
    errno.EDQUOT: "the disk quota is exhausted: free space and rerun the same command",
    errno.EACCES: "permission denied: check the file's permissions or choose another path",
    errno.EPERM: "operation not permitted: check the file's permissions or choose another path",
    errno.ENOENT: "no such file or folder: check the path",
    errno.EISDIR: "is a folder: pass a file",
    errno.ENOTDIR: "a part of the path is not a folder: check the path",
    errno.EROFS: "the file system is read-only: choose another output folder",
}


def _expected_types() -> tuple[type[BaseException], ...]:
    from golongrl.data.schema import DataError
    from golongrl.inference.models import ModelSpecError
    from golongrl.inference.openai_backend import BackendError
    from golongrl.rewards.ground_truth import GroundTruthError
    from golongrl.safe_yaml import YamlLimitError
    from golongrl.tasks import UnknownTaskError
    from golongrl.training.config import ConfigError

    return (DataError, ConfigError, GroundTruthError, UnknownTaskError, ModelSpecError, YamlLimitError,
            BackendError)


def describe(exc: BaseException) -> str | None:
    """The one-line report of an expected failure, or None for a bug (keep the traceback)."""
    from golongrl.inference.openai_backend import BackendError

    if isinstance(exc, BackendError):
        first, *rest = str(exc).splitlines()
        detail = f" ({rest[0].strip()})" if rest else ""
        return (f"{first}{detail}; finished requests are cached in the output folder: rerun the same "
                "command to retry only the failed ones")
    if isinstance(exc, _expected_types()):
        return str(exc)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)) \
            and exc.errno is None:
        return str(exc)  # raised by golongrl itself with the path and the problem in the message
    if isinstance(exc, OSError) and exc.errno is not None:
        where = exc.filename or "a file"
        hint = _ERRNO_HINTS.get(exc.errno, exc.strerror or str(exc))
        return f"cannot use {where}: {hint}"
    if isinstance(exc, UnicodeDecodeError):
        return f"input is not UTF-8 text (byte {exc.start}): save it as UTF-8"
    if isinstance(exc, RecursionError):
        return "input nested too deeply to process: flatten it"
    if isinstance(exc, FloatingPointError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: use smaller inputs or batches"
    return None


def fail(message: str) -> NoReturn:
    """Report an expected failure a command caught itself: one ``error:`` line and exit 2; under
    ``--debug`` the exception being handled (if any) propagates with its traceback instead."""
    handling = sys.exc_info()[1]
    if debug and handling is not None:
        raise handling
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(FAILURE_EXIT)


class ErrorReportingGroup(TyperGroup):
    """The root command group: turns expected failures into one line on stderr."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Exception as exc:
            line = describe(exc)
            if line is None or debug:
                raise
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
            raise typer.Exit(FAILURE_EXIT) from None
