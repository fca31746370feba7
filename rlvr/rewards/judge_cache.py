"""The judge's persistent result cache: one sqlite file, verdicts keyed by content.

A key is the SHA-256 of everything that decides a verdict: the prompt's messages, the
completion, the rubric version (or the items themselves), the judge's model and
endpoint, its decoding settings and the prompt version (`cache_key`). Only final
verdicts are stored, ``scored`` and ``parse_error`` (the judge's own answer, which a
deterministic judge repeats); timeouts and outages are not, so a rerun asks again.

The file is opened in WAL mode with a busy timeout, so several processes (ranks, a
bench beside a run) can share it. A cache file that cannot be opened or read (corrupt,
read-only disk) prints one warning and the judge runs uncached: never a crash.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Optional

__all__ = ["JudgeCache", "cache_key", "default_cache_path"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, reason TEXT, scores TEXT, answer TEXT, at REAL)"


def default_cache_path() -> Path:
    import os

    return Path(os.path.expanduser(os.environ.get("RLVR_CACHE", "~/.cache/rlvr"))) / "judge" / "verdicts.sqlite"


def cache_key(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


class JudgeCache:
    """get_many / put_many over (key -> reason, scores, answer); used from one thread (the source's)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.db: Optional[sqlite3.Connection] = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=30.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(_SCHEMA)
            self.db.commit()
        except (sqlite3.Error, OSError) as exc:
            self._disable(exc)

    def _disable(self, exc: BaseException) -> None:
        print(f"warning: judge cache {self.path} is unusable ({type(exc).__name__}: {exc}); judging without a "
              f"cache (delete the file to start a new one)", file=sys.stderr, flush=True)
        if self.db is not None:
            try:
                self.db.close()
            except sqlite3.Error:
                pass
        self.db = None

    @property
    def enabled(self) -> bool:
        return self.db is not None

    def get_many(self, keys: list[str]) -> dict[str, tuple[str, Optional[dict[str, float]], str]]:
        if self.db is None or not keys:
            return {}
        out = {}
        try:
            for start in range(0, len(keys), 500):  # sqlite's bound-parameter limit
                chunk = keys[start:start + 500]
                rows = self.db.execute(f"SELECT key, reason, scores, answer FROM verdicts WHERE key IN "
                                       f"({','.join('?' * len(chunk))})", chunk).fetchall()
                for key, reason, scores, answer in rows:
                    out[key] = (reason, json.loads(scores) if scores else None, answer or "")
        except (sqlite3.Error, ValueError) as exc:
            self._disable(exc)
            return {}
        return out

    def put_many(self, rows: Iterable[tuple[str, str, Optional[dict[str, float]], str]]) -> None:
        if self.db is None:
            return
        now = time.time()
        try:
            self.db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?)",
                                [(k, r, json.dumps(s) if s is not None else None, a, now) for k, r, s, a in rows])
            self.db.commit()
        except sqlite3.Error as exc:
            self._disable(exc)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
