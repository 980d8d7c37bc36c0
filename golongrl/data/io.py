"""Reading and writing dataset rows as JSONL or parquet, chosen by file suffix.

Rows come back unchanged (use :func:`golongrl.data.schema.validate_record`, or
:func:`read_valid_records`, for the canonical form). Writes are atomic: the data goes to a
temporary file in the target's folder which then replaces the target with :func:`os.replace`,
so a reader (or a resumed build) never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from golongrl.data.schema import DataError, validate_record

JSONL_SUFFIXES: frozenset[str] = frozenset({".jsonl", ".json"})
PARQUET_SUFFIXES: frozenset[str] = frozenset({".parquet", ".pq"})
#: Rows per parquet read batch: keeps memory bounded on files with 100K-token prompts.
_PARQUET_BATCH_ROWS = 256
#: Deepest nesting a row may have; real rows nest four or five levels, and recursive code
#: downstream (validation, copies, scoring) must never meet a row that exhausts the stack.
MAX_ROW_DEPTH = 64
_TOO_DEEP = object()


def nesting_depth(value: Any, limit: int = MAX_ROW_DEPTH) -> int:
    """Depth of nested lists/dicts in ``value`` (0 for a scalar), counted up to ``limit + 1``."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth) for child in node if isinstance(child, (dict, list)))
    return deepest


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise DataError(
        f"unsupported file type {suffix or '(none)'!r}; use .jsonl or .parquet", source=path
    )


def read_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, row)`` for every row of a ``.jsonl`` or ``.parquet`` file.

    Row numbers are 1-based; for JSONL they are line numbers (blank lines are skipped but
    counted), so an error message points at the line an editor shows. A line that is not a JSON
    object raises :class:`DataError` with its row number; a missing or unreadable file raises
    :class:`DataError` without one.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder, expected a .jsonl or .parquet file", source=path)
    fmt = _format(path)
    if not path.is_file():
        raise DataError("no such file", source=path)
    if not os.access(path, os.R_OK):
        raise DataError("not readable (permission denied); check the file's permissions", source=path)
    if fmt == "jsonl":
        yield from _read_jsonl(path)
    else:
        yield from _read_parquet(path)


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
                raise DataError(f"not valid JSON ({reason})", source=path, row=number) from None
            except RecursionError:
                row = _TOO_DEEP
            if row is _TOO_DEEP or nesting_depth(row) > MAX_ROW_DEPTH:
                raise DataError(f"nested deeper than {MAX_ROW_DEPTH} levels", source=path, row=number)
            if not isinstance(row, dict):
                raise DataError(
                    f"is a JSON {type(row).__name__}, expected an object", source=path, row=number
                )
            yield number, row


def _read_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"not a readable parquet file ({exc})", source=path) from None
    number = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def read_valid_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Like :func:`read_records` but every row is validated and normalised; the first bad row
    raises :class:`DataError` naming file, row and field."""
    for number, row in read_records(path):
        yield number, validate_record(row, source=path, row=number)


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (``os.umask`` can
    only be read by setting it, which races with other threads creating files)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode(path: str | os.PathLike[str] | None = None) -> int:
    """The permission bits a plain ``open(path, "w")`` would leave: an existing file keeps its
    own, a new one gets ``0o666`` masked by the umask."""
    if path is not None:
        with contextlib.suppress(OSError):
            return stat.S_IMODE(os.stat(path).st_mode)
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    """The permission bits ``os.mkdir`` would give a new folder: ``0o777`` masked by the umask
    (for folders built under :func:`tempfile.mkdtemp`, which makes them owner-only, and then
    renamed into place)."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on clean exit fsync it and ``os.replace`` it onto
    ``path``; on error delete it and leave ``path`` untouched.

    The result gets the permissions a plain ``open()`` would give (see
    :func:`default_file_mode`), not the owner-only mode of the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    file_mode = default_file_mode(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def remove_orphans(folder: str | os.PathLike[str], name: str = r"[^/]+") -> list[Path]:
    """Delete what interrupted atomic writes left in ``folder`` (not below it); return the paths.

    Those are the hidden ``.<target>.<8 random chars>.tmp`` files of :func:`atomic_output` and
    the ``.<target>.<8 random chars>`` folders of a :func:`tempfile.mkdtemp` staging folder
    (checkpoints, exported models), for targets whose name matches the regex ``name``. Call it
    when a command starts on a folder it owns: a writer that is still running would lose its
    temporary file.
    """
    folder = Path(folder)
    pattern = re.compile(rf"^\.(?:{name})\.[a-z0-9_]{{8}}(?:\.tmp)?$")
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not pattern.match(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


def dumps_record(record: Mapping[str, Any]) -> str:
    """One JSONL line (no newline): UTF-8 text kept readable, key order preserved."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def write_records(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Write ``records`` atomically to ``path`` (``.jsonl`` or ``.parquet``); return the count.

    JSONL is streamed. Parquet keeps nested fields as nested types (lists and structs, which is
    what verl's loader expects) and is assembled in memory first, because a struct schema is
    only known after seeing every row. A row that cannot be encoded raises :class:`DataError`
    and leaves ``path`` untouched.
    """
    path = Path(path)
    fmt = _format(path)
    if fmt == "jsonl":
        count = 0
        with atomic_output(path, "w") as handle:
            for count, record in enumerate(records, start=1):
                try:
                    handle.write(dumps_record(record))
                except (TypeError, ValueError) as exc:
                    raise DataError(f"cannot encode as JSON ({exc})", source=path, row=count) from None
                handle.write("\n")
        return count
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [dict(r) for r in records]
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(
            f"rows do not share one parquet schema ({exc}); write JSONL or make the field "
            "types consistent",
            source=path,
        ) from None
    with atomic_output(path, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
    return len(rows)


class AppendLog:
    """Append-only JSONL log of finished work items ``{"key": ..., ...}``, for resumable jobs.

    Each :meth:`add` is flushed and fsynced, so a killed job loses at most the item in flight;
    on reopening, a torn last line is dropped (the file is rewritten atomically without it) and
    :attr:`items` holds everything finished before.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.items: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            good: list[str] = []
            for line in self.path.read_text(encoding="utf-8").split("\n"):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line being written when the job was killed
                if isinstance(item, dict) and "key" in item:
                    self.items[item["key"]] = item
                    good.append(line)
            with atomic_output(self.path, "w") as handle:
                handle.write("".join(g + "\n" for g in good))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")

    def add(self, key: str, **payload: Any) -> None:
        item = {"key": key, **payload}
        self._handle.write(dumps_record(item) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.items[key] = item

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "AppendLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "AppendLog",
    "atomic_output",
    "current_umask",
    "default_dir_mode",
    "default_file_mode",
    "dumps_record",
    "read_records",
    "read_valid_records",
    "remove_orphans",
    "write_records",
]
