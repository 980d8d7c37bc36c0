"""Content-hash cache of generations, so an interrupted evaluation resumes without repeating work.

The key is the SHA-256 of a canonical JSON document holding the backend identity (model name or
folder, rope scaling, ...), the chat messages and every sampling parameter. Any change to one of
them is a different key; nothing else (request order, batch size, port of the server) matters.
Storage is one SQLite file in WAL mode: each ``put`` is its own committed transaction, so a
killed process loses at most the request in flight, and several threads or processes may share
the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import Generation, GenerationRequest


def request_key(identity: Mapping[str, Any], request: GenerationRequest) -> str:
    """Hex SHA-256 of (backend identity, messages, sampling params) in canonical JSON."""
    document = {
        "backend": dict(identity),
        "messages": [dict(m) for m in request.messages],
        "sampling": dataclasses.asdict(request.sampling),
    }
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class GenerationCache:
    """A persistent ``key -> Generation`` map (thread-safe; safe across processes via SQLite)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=60.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        self._conn.commit()

    def get(self, key: str) -> Generation | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM generations WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        generation = Generation(**json.loads(row[0]))
        generation.cached = True
        return generation

    def put(self, key: str, generation: Generation) -> None:
        payload = dataclasses.asdict(generation)
        payload["cached"] = False
        value = json.dumps(payload, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO generations (key, value) VALUES (?, ?)", (key, value)
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_cache(cache: GenerationCache | str | Path | None) -> GenerationCache | None:
    """Accept a cache object, a path to an SQLite file, or None (no caching)."""
    if cache is None or isinstance(cache, GenerationCache):
        return cache
    return GenerationCache(cache)


def generate_cached(
    cache: GenerationCache | None,
    identity: Mapping[str, Any],
    requests: list[GenerationRequest],
    generate_missing: Any,
) -> list[Generation]:
    """Answer ``requests`` from ``cache`` where possible; ``generate_missing(indices)`` yields
    ``(index, Generation)`` pairs for the rest, each stored as soon as it arrives (so a crash
    keeps everything finished before it). Returns generations in request order."""
    results: list[Generation | None] = [None] * len(requests)
    keys = [request_key(identity, r) for r in requests] if cache is not None else []
    missing: list[int] = []
    for index in range(len(requests)):
        hit = cache.get(keys[index]) if cache is not None else None
        if hit is None:
            missing.append(index)
        else:
            results[index] = hit
    if missing:
        for index, generation in generate_missing(missing):
            results[index] = generation
            # Failed requests are answered (finish reason "error") but never cached: a rerun
            # must retry them.
            if cache is not None and "error" not in generation.finish_reasons:
                cache.put(keys[index], generation)
    assert all(r is not None for r in results), "backend returned fewer generations than requests"
    return results  # type: ignore[return-value]
