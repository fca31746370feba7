"""`load_preferences`: a file or an iterable of rows -> a `PreferenceSet`, drops counted by reason.

Files: ``.jsonl`` and ``.jsonl.gz`` (one JSON object a line; a line that does not parse
is dropped as ``malformed_json``), ``.json`` (a list of rows, or jsonl under that name)
and ``.parquet``. A source where nothing survives is a `DataError` (a ValueError) naming
the fields found and the shapes accepted.
"""
from __future__ import annotations

import collections
import gzip
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Union

from rlvr.data.chat import DataError
from rlvr.preference.adapters import ADAPTERS, accepted_shapes, find_adapter
from rlvr.preference.schema import Dropped, Pair, PreferenceSet

__all__ = ["load_preferences", "read_rows", "SUFFIXES"]

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")


class _BadLine:
    """Stands for a jsonl line that is not JSON (counted as ``malformed_json``)."""


def _json_lines(lines: Iterable[str]) -> Iterator[Any]:
    for line in lines:
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            yield _BadLine()


def read_rows(path: Union[str, os.PathLike]) -> Iterator[Any]:
    """The rows of a preference file (see the module docstring for the formats)."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_file():
        raise DataError(f"preference data {path}: no such file")
    name = p.name.lower()
    if name.endswith(".jsonl.gz") or name.endswith(".json.gz"):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            yield from _json_lines(f)
    elif name.endswith(".jsonl"):
        with open(p, encoding="utf-8") as f:
            yield from _json_lines(f)
    elif name.endswith(".json"):
        text = p.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:  # jsonl saved as .json
            yield from _json_lines(text.splitlines())
            return
        yield from (data if isinstance(data, list) else [data])
    elif name.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from pq.read_table(p).to_pylist()
    else:
        raise DataError(f"preference data {path}: unknown format; use one of {', '.join(SUFFIXES)}")


def _too_long(pair: Pair, max_chars: Optional[int]) -> bool:
    if max_chars is None:
        return False
    context = sum(len(m["content"]) for m in pair.messages)
    return context + max(len(pair.chosen), len(pair.rejected)) > max_chars


def load_preferences(source: Union[str, os.PathLike, Iterable[Mapping[str, Any]]], *,
                     max_pairs_per_prompt: int = 16, max_chars: Optional[int] = None,
                     format: str = "auto") -> PreferenceSet:
    """Read preference rows of any registered shape into pairs; every dropped row or pair is counted.

    ``max_pairs_per_prompt`` caps the pairs one ranked row expands into; ``max_chars`` drops
    a pair whose context plus longer answer has more characters (``too_long``). ``format``
    names the one adapter every row must fit (a row it does not detect is ``missing_fields``);
    ``auto`` detects each row's shape.
    """
    if max_pairs_per_prompt < 1:
        raise DataError(f"max_pairs_per_prompt={max_pairs_per_prompt}; use 1 or more")
    if format != "auto" and format not in ADAPTERS:
        raise DataError(f"unknown preference format {format!r}; known: auto, {', '.join(ADAPTERS)}")
    forced = ADAPTERS.lookup(format) if format != "auto" else None
    name = str(source) if isinstance(source, (str, os.PathLike)) else "rows"
    rows = read_rows(source) if isinstance(source, (str, os.PathLike)) else source
    result = PreferenceSet(pairs=[], dropped=collections.Counter(), rows_read=0, fields_seen=set())
    for index, row in enumerate(rows):
        result.rows_read += 1
        if isinstance(row, _BadLine):
            result.dropped["malformed_json"] += 1
            continue
        if not isinstance(row, Mapping):
            result.dropped["malformed"] += 1
            continue
        result.fields_seen.update(str(k) for k in row)
        adapter = find_adapter(row) if forced is None else (forced if forced.detect(row) else None)
        if adapter is None:
            result.dropped["missing_fields"] += 1
            continue
        try:
            pairs = adapter.convert(row, str(index), max_pairs_per_prompt, result.dropped)
        except Dropped as exc:
            result.dropped[exc.reason] += 1
            continue
        result.shapes[adapter.name] += 1
        for pair in pairs:
            if _too_long(pair, max_chars):
                result.dropped["too_long"] += 1
            else:
                result.pairs.append(pair)
    if not result.pairs:
        raise DataError(f"no preference pairs in {name}: {result.describe()}; fields found: "
                        f"{', '.join(sorted(result.fields_seen)) or 'none'}; accepted shapes: {accepted_shapes()}")
    return result
