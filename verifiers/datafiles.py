"""Read and write rows of dataset files for ``rlvr-verify``, streaming where the format allows.

Readers, chosen by file extension (``READERS``), give a `RowSource`: the column names
known up front and an iterator of dict rows.

* ``.jsonl`` — one JSON object a line, streamed; blank lines are skipped.
* ``.json`` — a JSON array of objects (loaded whole: the json module cannot stream an
  array) or JSON lines (streamed).
* ``.csv`` — streamed with a header row; every value is a string.
* ``.parquet`` — streamed one record batch at a time through pyarrow.
* ``open_dataset`` — anything ``datasets.load_dataset`` reads offline: a local data
  file or directory, a ``save_to_disk`` directory, or a dataset already in the local
  Hugging Face cache. Rows are read batch by batch from the memory-mapped Arrow cache.

Writers (``WRITERS``) stream rows to a temporary file next to the destination and
rename it into place only when every row is written, so an interrupted run never leaves
a half-written file under the final name. CSV and Parquet cells that hold lists or dicts
are written as JSON strings; Parquet takes its column types from the first batch.
"""
from __future__ import annotations

import collections
import csv
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

__all__ = ["DataFileError", "RowSource", "READERS", "WRITERS", "open_rows", "open_dataset", "write_rows"]

_BATCH = 1024


class DataFileError(Exception):
    """A file that cannot be read or written as asked; the message is meant for the user."""


@dataclass
class RowSource:
    """Rows from one file: ``fields`` are the column names (for JSON lines, those of the first row)."""

    fields: list[str]
    rows: Iterator[dict[str, Any]]


def _suffix(path: Path, table: dict) -> str:
    suffix = path.suffix.lower()
    if suffix not in table:
        raise DataFileError(f"{path}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(sorted(table))}")
    return suffix


# -- readers ------------------------------------------------------------------------------------
def _json_lines(path: Path, lines: Iterable[str], first_lineno: int = 1) -> Iterator[dict[str, Any]]:
    for lineno, line in enumerate(lines, first_lineno):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataFileError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        yield row


def _with_first_fields(rows: Iterator[dict[str, Any]]) -> RowSource:
    first = next(rows, None)
    if first is None:
        return RowSource([], iter(()))

    def chained() -> Iterator[dict[str, Any]]:
        yield first
        yield from rows

    return RowSource(list(first), chained())


def _lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8-sig") as handle:
        yield from handle


def read_jsonl(path: Path) -> RowSource:
    return _with_first_fields(_json_lines(path, _lines(path)))


def read_json(path: Path) -> RowSource:
    with open(path, encoding="utf-8-sig") as handle:
        head = handle.read(4096).lstrip()
    if not head.startswith("["):
        return read_jsonl(path)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    bad = next((i for i, row in enumerate(data) if not isinstance(row, dict)), None)
    if bad is not None:
        raise DataFileError(f"{path}: item {bad} of the array is {type(data[bad]).__name__}, expected an object")
    return RowSource(list(data[0]) if data else [], iter(data))


def read_csv(path: Path) -> RowSource:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    handle = open(path, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(handle)
    fields = list(reader.fieldnames or [])

    def rows() -> Iterator[dict[str, Any]]:
        with handle:
            for row in reader:
                row.pop(None, None)  # cells beyond the header
                yield row

    return RowSource(fields, rows())


def read_parquet(path: Path) -> RowSource:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataFileError(f"{path}: not a readable Parquet file ({exc})") from None

    def rows() -> Iterator[dict[str, Any]]:
        for batch in parquet.iter_batches(batch_size=_BATCH):
            yield from batch.to_pylist()

    return RowSource(list(parquet.schema_arrow.names), rows())


READERS: dict[str, Callable[[Path], RowSource]] = {
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".csv": read_csv,
    ".parquet": read_parquet,
}


def open_rows(path: str | os.PathLike) -> RowSource:
    """Open a data file by extension; a missing file or unknown type is a `DataFileError`."""
    path = Path(path)
    suffix = _suffix(path, READERS)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    try:
        return READERS[suffix](path)
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not UTF-8 text ({exc.reason})") from None


_DATASET_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}


def _load_dataset(path_or_name: str, split: str) -> Any:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    path = Path(path_or_name)
    if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataFileError(f"{path}: no split {split!r}; splits: {', '.join(loaded)}")
            return loaded[split]
        return loaded
    builder = _DATASET_BUILDERS.get(path.suffix.lower()) if path.is_file() else None
    if builder:
        return datasets.load_dataset(builder, data_files={split: str(path)}, split=split)
    return datasets.load_dataset(path_or_name, split=split)


def open_dataset(path_or_name: str, split: str = "train") -> RowSource:
    """Rows of one split of a dataset that ``datasets`` can load without a network."""
    try:
        dataset = _load_dataset(path_or_name, split)
    except DataFileError:
        raise
    except Exception as exc:  # datasets raises many types (FileNotFoundError, ValueError, ConnectionError...)
        message = " ".join(str(exc).split())[:300]
        raise DataFileError(f"cannot load dataset {path_or_name!r} split {split!r}: {type(exc).__name__}: {message}") from None

    def rows() -> Iterator[dict[str, Any]]:
        for start in range(0, len(dataset), _BATCH):
            batch = dataset[start:start + _BATCH]
            keys = list(batch)
            yield from (dict(zip(keys, values)) for values in zip(*batch.values()))

    return RowSource(list(dataset.column_names), rows())


# -- writers ------------------------------------------------------------------------------------
def _jsonable(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _cell(value: Any) -> Any:
    return _jsonable(value) if isinstance(value, (dict, list, tuple)) else value


def write_jsonl(handle: Any, rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        handle.write(_jsonable(row) + "\n")


def write_json(handle: Any, rows: Iterable[dict[str, Any]]) -> None:
    handle.write("[")
    for index, row in enumerate(rows):
        handle.write(("," if index else "") + "\n" + _jsonable(row))
    handle.write("\n]\n")


def write_csv(handle: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Columns are those of the first row; keys that first appear later are dropped."""
    writer = None
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(handle, fieldnames=list(row), extrasaction="ignore")
            writer.writeheader()
        writer.writerow({key: _cell(value) for key, value in row.items()})


def _stringify(cells: list[dict[str, Any]], columns: Iterable[str]) -> None:
    for row in cells:
        for name in columns:
            if name in row and row[name] is not None and not isinstance(row[name], str):
                row[name] = _jsonable(row[name])


def _arrow_table(cells: list[dict[str, Any]], schema: Any) -> Any:
    """A table for one batch. The first batch fixes the schema: columns holding values of
    several Python types become strings, all-null columns become string columns; later
    batches must fit that schema (string columns take any value as its JSON text)."""
    import pyarrow as pa

    if schema is None:
        kinds: dict[str, set] = collections.defaultdict(set)
        for row in cells:
            for name, value in row.items():
                if value is not None:
                    kinds[name].add(type(value))
        _stringify(cells, [name for name, types in kinds.items() if len(types) > 1])
        table = pa.Table.from_pylist(cells)
        fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
        return table.cast(pa.schema(fields))
    _stringify(cells, [f.name for f in schema if pa.types.is_string(f.type)])
    return pa.Table.from_pylist(cells, schema=schema)


def write_parquet(handle: Any, rows: Iterable[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, batch = None, []

    def flush() -> None:
        nonlocal writer
        cells = [{key: _cell(value) for key, value in row.items()} for row in batch]
        try:
            table = _arrow_table(cells, writer.schema if writer else None)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataFileError(f"cannot write Parquet: a column's values do not fit its type ({exc})") from None
        if writer is None:
            writer = pq.ParquetWriter(handle, table.schema)
        writer.write_table(table)
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            flush()
    if batch or writer is None:
        flush()
    writer.close()


WRITERS: dict[str, tuple[str, Callable[[Any, Iterable[dict[str, Any]]], None]]] = {
    ".jsonl": ("w", write_jsonl),
    ".json": ("w", write_json),
    ".csv": ("w", write_csv),
    ".parquet": ("wb", write_parquet),
}


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early on an output path of unknown type; create its directory (``runs/`` in a fresh clone)."""
    path = Path(path)
    _suffix(path, WRITERS)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFileError(f"{path}: cannot create directory {path.parent} ({exc.strerror})") from None
    if not path.parent.resolve().is_dir():
        raise DataFileError(f"{path}: {path.parent} is not a directory")
    return path


def write_rows(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` (format by extension) atomically: temp file, then rename."""
    path = check_writable(path)
    mode, writer = WRITERS[path.suffix.lower()]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            writer(handle, rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
