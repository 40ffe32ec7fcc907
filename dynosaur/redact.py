"""Keeping secrets out of everything we write: stored messages, log lines, exceptions, XCom.

Two nets: the secret values this process was configured with (API key, Hub token, database
password: :class:`~dynosaur.settings.Settings` registers them when it is built), and patterns of
credentials in general (Hub and OpenAI-style tokens, bearer headers, passwords in URLs), so a
server that echoes someone else's key in an error body is caught too. Every message that reaches
the store goes through :func:`redact`; :func:`install_log_filter` applies it to every log record.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"

_lock = threading.Lock()
_known: frozenset[str] = frozenset()

# Credentials by their shape: Hub tokens (hf_...), OpenAI-style keys (sk-..., sk-proj-...),
# bearer/basic authorization values, key/token/password assignments, passwords inside URLs.
_PATTERNS = (
    re.compile(r"\bhf_[A-Za-z0-9]{16,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(
        r"(?i)\b(api[_-]?key|access[_-]?token|token|secret|password|passwd)"
        r"(\"?\s*[:=]\s*\"?)([^\s\"',;&]{6,})"
    ),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^:/\s@]+:)([^@\s/]+)(@)"),
)


def register(*secrets: str | None) -> None:
    """Remember secret values to mask wherever they appear (short ones are ignored: masking
    every occurrence of a 3-character value would garble text)."""
    global _known
    values = {s for s in secrets if s and len(s) >= 6}
    if not values - _known:
        return
    with _lock:
        _known = _known | values
    install_log_filter()  # wherever secrets become known, the process's log handlers mask them


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every known secret, every value of ``extra`` and every credential-shaped
    string replaced by ``***``."""
    if not text:
        return text
    for secret in sorted(
        {*_known, *(e for e in extra if e and len(e) >= 6)}, key=len, reverse=True
    ):
        text = text.replace(secret, MASK)
    text = _PATTERNS[0].sub(MASK, text)
    text = _PATTERNS[1].sub(MASK, text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _PATTERNS[3].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _PATTERNS[4].sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message through :func:`redact` (and its exception text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit its format: leave it to logging
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = str(exc)
            if redact(text) != text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of ``logger`` (default: the root logger), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
