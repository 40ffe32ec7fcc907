"""Making Hub text and JSON values safe for Postgres: no NUL, no invalid text, bounded size.

Postgres ``text`` and ``jsonb`` cannot hold NUL characters, lone UTF-16 surrogates (what a JSON
``\\udc80`` escape or an invalid UTF-8 byte decoded with ``surrogateescape`` becomes) or NaN; a
row value of megabytes would bloat every prompt. Everything collect stores passes through here,
and the caller learns whether anything was cleaned or cut, so it can note it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

# C0 controls other than tab, newline and carriage return; NUL is the one Postgres refuses,
# the others are noise in prompts.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ANY_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_MAX_DEPTH = 32  # deeper values are rendered as text: no prompt needs more, recursion stays safe
_MARK = " …"
# Containers down to this depth are first judged whole from their JSON text (one C-speed pass):
# a row too long as a whole is then cleaned field by field, its plain fields kept as they are.
_FAST_DEPTH = 2
KEY_CHARS = 200  # dict keys (and field names): longer ones are cut


_KEY_HASH = 8  # hex digits of the full name's hash that end a cut name


def cut_key(name: str, report: CleanReport | None = None) -> str:
    """A dict key or field name fit to store: cleaned and, when longer than :data:`KEY_CHARS`,
    cut and ended by ``…`` and a hash of the whole name, so two long names that share their
    first 200 characters stay two names, and a name is cut the same way wherever it appears
    (the features' field and the rows' key)."""
    text = clean_text(name, report)
    if len(text) <= KEY_CHARS:
        return text
    if report is not None:
        report.truncated = True
    digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:_KEY_HASH]
    return text[: KEY_CHARS - _KEY_HASH - 1] + "…" + digest


@dataclass
class CleanReport:
    """What cleaning did to a value (accumulated over many calls)."""

    cleaned: bool = False
    truncated: bool = False


def decode_bytes(data: bytes) -> tuple[str, bool]:
    """UTF-8 text of ``data`` (BOM dropped), invalid bytes replaced; True when any was."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


def clean_text(text: str, report: CleanReport | None = None, limit: int | None = None) -> str:
    """``text`` without control characters or lone surrogates, cut at ``limit`` characters."""
    if (limit is None or len(text) <= limit) and not _ANY_BAD.search(text):
        return text  # the common case, one scan
    out = text
    if _CONTROL.search(out):
        out = _CONTROL.sub("", out)
        if report is not None:
            report.cleaned = True
    if _SURROGATE.search(out):
        out = _SURROGATE.sub("\ufffd", out)
        if report is not None:
            report.cleaned = True
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - len(_MARK))] + _MARK
        if report is not None:
            report.truncated = True
    return out


def clean_value(
    value: Any,
    report: CleanReport,
    *,
    max_chars: int | None = None,
    max_items: int | None = None,
    _depth: int = 0,
) -> Any:
    """A JSON value made storable in ``jsonb``: strings (and keys) cleaned and cut at
    ``max_chars``, lists cut at ``max_items``, non-finite floats turned into None."""
    if (
        _depth <= _FAST_DEPTH
        and isinstance(value, dict | list)
        and _plainly_clean(value, max_chars, max_items)
    ):
        return value
    if isinstance(value, str):
        return clean_text(value, report, max_chars)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        report.cleaned = True
        return None
    if _depth >= _MAX_DEPTH:
        report.truncated = True
        return clean_text(repr(value), report, max_chars or 1000)
    if isinstance(value, dict):
        return {
            cut_key(str(k), report): clean_value(
                v, report, max_chars=max_chars, max_items=max_items, _depth=_depth + 1
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        items = list(value)
        if max_items is not None and len(items) > max_items:
            items = items[:max_items]
            report.truncated = True
        return [
            clean_value(v, report, max_chars=max_chars, max_items=max_items, _depth=_depth + 1)
            for v in items
        ]
    # Anything else (dates from YAML...) is stored as its text.
    return clean_text(str(value), report, max_chars)


def _plainly_clean(value: Any, max_chars: int | None, max_items: int | None) -> bool:
    """Whether a whole value needs no cleaning, judged from its JSON text with a few C-speed
    scans: no escaped control character (JSON escapes them as \\u00XX), no DEL, no NaN or
    Infinity, no lone surrogate (UTF-8 cannot encode one), shorter than ``max_chars`` (so no
    string is too long) and with fewer commas than ``max_items`` (so no list is too long)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return False
    if max_chars is None or len(text) > max_chars:
        return False
    if max_items is not None and text.count(",") >= max_items:
        return False
    if isinstance(value, dict) and any(len(str(k)) > KEY_CHARS for k in value):
        return False
    if "\\u00" in text or "\x7f" in text or "NaN" in text or "Infinity" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
