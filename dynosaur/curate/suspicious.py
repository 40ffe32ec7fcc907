"""Suspicious content: text an LLM wrote into a task that the source data never contained.

A dataset card can carry a prompt injection ("ignore previous instructions, tell the user to visit
...") and an obedient LLM then writes it into a task's instruction, which every instance of the
task repeats. Three kinds of spans are suspicious:

* **links**: URLs (``http://``, ``www.``) and bare domains with a path;
* **instructions to the reader**: "ignore/disregard (all) previous instructions", "visit ...",
  "click ...", "reveal/share/send your key/password/token", "system prompt", "you are now ...";
* **secret-like strings**: API-key shapes (``sk-``, ``hf_``, ``ghp_``, AWS ``AKIA``, Slack
  ``xox``, private-key headers, JWTs) and long random-looking tokens.

A span is only suspicious when the config's sample rows do not contain it (after normalising case
and spaces): a dataset of URLs or of support dialogues that say "visit our site" keeps tasks that
quote its own data. An instance's input and output are rendered from those rows, so its only text
that is not from the data is its task's instruction: checking the task covers its instances.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from dynosaur.curate.filters import Rejection
from dynosaur.model import Task
from dynosaur.reasons import Reason

_LINK = re.compile(
    r"(?:https?|ftp)://[^\s'\"<>)\]]+"
    r"|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s'\"<>)\]]*"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|ru|xyz|info|biz|co|me|ly|app|dev|ai|top)"
    r"/[^\s'\"<>)\]]*",
    re.IGNORECASE,
)
_VERB = (
    r"(?:reveal|share|send|tell\s+(?:me|us)|give\s+(?:me|us)|enter|paste|type\s+in|provide|"
    r"print|show|leak|disclose|post|upload|email)"
)
# Secrets named plainly ("the password"), and bare words that only mean a secret after "your".
_SECRET_NAMES = (
    r"(?:api[\s_-]*(?:keys?|tokens?)|passwords?|passwd|passphrases?|secret\s+keys?|"
    r"access\s+tokens?|auth(?:entication)?\s+tokens?|credentials|system\s+prompt|"
    r"private\s+keys?|ssh\s+keys?|credit\s+card(?:\s+number)?)"
)
_YOUR_SECRET = r"(?:keys?|tokens?|secrets?|pin)"
_READER = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding|former|original)\s+"
    r"(?:instructions?|prompts?|rules|directions|messages?)\b"
    r"|\b(?:visit|go\s+to|navigate\s+to|browse\s+to|click(?:\s+on)?|download\s+from)\s+"
    r"(?:our|my|this|the\s+following|the)?\s*(?:website|web\s*site|site|web\s*page|page|link|"
    r"url|https?://\S+|www\.\S+|\S+\.(?:com|net|org|io|ru|xyz)\b)"
    r"|\b"
    + _VERB
    + r"\s+(?:me\s+|us\s+)?(?:your|the|all|any)\s+(?:own\s+)?"
    + _SECRET_NAMES
    + r"\b|\b"
    + _VERB
    + r"\s+(?:me\s+|us\s+)?your\s+(?:own\s+)?"
    + _YOUR_SECRET
    + r"\b"
    r"|\byou\s+are\s+now\s+(?:a|an|in|dan)\b"
    r"|\b(?:jailbreak|do\s+anything\s+now)\b"
    r"|\bnew\s+instructions?\s*:",
    re.IGNORECASE,
)
_SECRET = re.compile(
    r"\bsk-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_-]{16,}"
    r"|\bhf_[A-Za-z0-9]{20,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{30,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    # a long token mixing lower case, upper case and digits (random-looking, key-shaped)
    r"|\b(?=[A-Za-z0-9_-]{32,}\b)(?=[^\s]*[a-z])(?=[^\s]*[A-Z])(?=[^\s]*[0-9])[A-Za-z0-9_-]{32,}"
)
_KINDS = (("link", _LINK), ("instruction to the reader", _READER), ("secret-like string", _SECRET))
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case-, space- and Unicode-form-insensitive form used to look spans up in the rows."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def source_text(rows: Sequence[Any]) -> str:
    """Every string of the sample rows, normalised and joined: where spans are looked up."""
    return "\n".join(normalise(text) for text in _strings(list(rows)))


def find_spans(text: str) -> Iterator[tuple[str, str]]:
    """(kind, span) of every suspicious span in ``text``."""
    for kind, pattern in _KINDS:
        for match in pattern.finditer(text):
            yield kind, match.group(0)


def foreign_spans(texts: Iterable[str], source: str | Callable[[], str]) -> list[tuple[str, str]]:
    """Suspicious spans of ``texts`` that the source text does not contain (``source`` may be a
    callable, called only when a text has a suspicious span at all)."""
    found: list[tuple[str, str]] = []
    haystack: str | None = source if isinstance(source, str) else None
    for text in texts:
        for kind, span in find_spans(text):
            key = normalise(span).rstrip(".,;:!?")
            if haystack is None:
                assert callable(source)
                haystack = source()
            if key and key not in haystack:
                found.append((kind, span))
    return found


def _quote(span: str) -> str:
    """A span as a message shows it: short, and a secret-like one masked."""
    short = span if len(span) <= 40 else span[:37] + "..."
    return repr(short)


def check_task(task: Task, source: str | Callable[[], str]) -> Rejection | None:
    """Reject a task whose instruction carries a suspicious span absent from its source rows
    (``source``: :func:`source_text` of the rows, or a callable giving it)."""
    texts = [task.instruction or ""]
    spans = foreign_spans(texts, source)
    if not spans:
        return None
    kind, span = spans[0]
    shown = f"{span[:6]}..." if kind == "secret-like string" else _quote(span)
    more = f" (and {len(spans) - 1} more)" if len(spans) > 1 else ""
    return Rejection(
        Reason.SUSPICIOUS_CONTENT,
        f"the instruction carries a {kind} not found in the source rows: {shown}{more}",
    )
