"""Bulk loads with ``COPY ... FROM STDIN`` (text format), streamed: lines are produced as Postgres
reads them, so memory stays flat and Python and the server work at the same time.

The repositories (:mod:`dynosaur.store.instances`, :mod:`dynosaur.store.tasks`) load through these.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy.engine import Connection

_CHUNK = 1 << 16


def escape(text: str) -> str:
    """``text`` as a field of COPY's text format (backslash, tab, newline, return escaped)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def field(value: Any) -> str:
    """One value as a COPY text field: str escaped, None as NULL, numbers as written."""
    if value.__class__ is str:
        return escape(value)
    if value is None:
        return "\\N"
    return str(value)


def line(row: Sequence[Any]) -> str:
    """One row as a COPY text line."""
    return "\t".join(map(field, row)) + "\n"


class LineStream(io.RawIOBase):
    """A readable file over COPY text lines, joined into chunks on demand (what
    ``copy_expert`` reads from). ``rows`` counts the lines handed out."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines: Iterator[str] = iter(lines)
        self.rows = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """The next chunk of about ``size`` bytes of whole lines (more when one line is larger).

        ``copy_expert`` forwards whatever a read returns, so chunks are never sliced or
        re-buffered.
        """
        want = _CHUNK if size is None or size < 0 else max(size, 1)
        parts: list[str] = []
        length = 0
        while length < want:
            batch = list(islice(self._lines, 64))
            if not batch:
                break
            self.rows += len(batch)
            parts.extend(batch)
            length += sum(map(len, batch))
        return "".join(parts).encode("utf-8")


def copy_lines(conn: Connection, table: str, columns: Sequence[str], lines: Iterable[str]) -> int:
    """COPY ready-made text-format ``lines`` into ``table`` within ``conn``'s transaction."""
    stream = LineStream(lines)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    raw: Any = conn.connection.dbapi_connection  # psycopg2's connection
    with raw.cursor() as cursor:
        cursor.copy_expert(sql, stream, size=_CHUNK)
    return stream.rows


def copy_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY ``rows`` (tuples of str, numbers or None) into ``table``; returns the row count."""
    return copy_lines(conn, table, columns, map(line, rows))
