"""Dataset cards: the YAML header (license, languages, task tags, pretty name) and the markdown
sections the prompts use (*Dataset Summary*, *Supported Tasks*, *Data Fields*), cleaned of HTML,
markdown noise and template placeholders. Pure functions over the card's bytes.

Cards are written by hand and often broken: a malformed header is salvaged block by block
(``card_unparseable``), a huge card is cut (``card_too_large``), invalid text is replaced
(``text_cleaned``). Parsing never raises.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from dynosaur.hub.text import CleanReport, clean_text, clean_value, decode_bytes
from dynosaur.licenses import (
    LicenseClass,
    dataset_license_class,
    license_class,
    licenses_in_text,
    normalize_license,
    usable_licenses,
)
from dynosaur.reasons import Reason

try:  # libyaml's loader is several times faster; both are safe loaders
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - pyyaml built without libyaml
    from yaml import SafeLoader as _Loader

# Headings that hold each section, in order of preference: the classic card template first,
# then the template the Hub has used since 2023 (Dataset Description, Uses, Dataset Structure).
SUMMARY_HEADINGS = ("dataset summary", "summary", "dataset description", "description")
SUPPORTED_TASKS_HEADINGS = (
    "supported tasks and leaderboards",
    "supported tasks",
    "direct use",
    "uses",
)
DATA_FIELDS_HEADINGS = ("data fields", "dataset structure")
LICENSING_HEADINGS = ("licensing information", "licensing", "license", "licence")
# Sections read without their sub-sections and without "- **Key:** value" metadata bullets: an
# old card's Dataset Description holds Homepage/Paper links and then every other section.
_DIRECT_ONLY = frozenset({"dataset description", "description"})
_META_BULLET = re.compile(r"^\s*[-*+]\s*\*\*[^*\n]{1,80}\*\*.*$", re.MULTILINE)

SECTION_MAX_CHARS = 10_000
_YAML_MAX_NODES = 200_000  # an alias bomb expands to billions: refuse it before walking it
_VALUE_MAX_CHARS = 10_000  # one string inside the YAML header

_PLACEHOLDER = re.compile(
    r"\[?\s*(?:more information needed|needs more information|more info needed)\s*\]?",
    re.IGNORECASE,
)
# Whole sections that say nothing.
_EMPTY_SECTION = re.compile(
    r"^(?:n/?a|none|todo|tbd|tba|coming soon|to be added|to be completed|-+|\.+|\?+)?$",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MAX_HEADING = 500  # longer lines are prose, whatever they start with
_TOP_KEY = re.compile(r"^[A-Za-z_][\w\-]*[ \t]*:")
_TITLE = re.compile(r"^(?:dataset card for|dataset card:?)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class CardInfo:
    """What collect keeps of a card."""

    data: dict[str, Any] | None = None
    pretty_name: str | None = None
    licenses: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    multilinguality: tuple[str, ...] = ()
    task_categories: tuple[str, ...] = ()
    task_ids: tuple[str, ...] = ()
    summary: str | None = None
    supported_tasks: str | None = None
    data_fields: str | None = None
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)
    licensing: str | None = None  # the Licensing Information section
    config_languages: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Where the license and the summary came from (card | card_text | dataset_infos), set by
    # :func:`dynosaur.hub.provenance.complete_card`; None when there is none.
    license_source: str | None = None
    license_class: str | None = None
    description_source: str | None = None


def parse_card(raw: bytes, *, truncated: bool = False) -> CardInfo:
    """Parse a card's bytes (``truncated``: the caller cut an over-large card)."""
    notes: list[str] = []
    problems: list[str] = []
    if truncated:
        notes.append(Reason.CARD_TOO_LARGE)
        problems.append(f"card cut at {len(raw):,} bytes")
    text, replaced = decode_bytes(raw)
    report = CleanReport(cleaned=replaced)
    text = clean_text(text.replace("\r\n", "\n").replace("\r", "\n"), report)
    front, body, closed = split_front_matter(text)

    data: dict[str, Any] | None = None
    if front is not None:
        data, error = load_yaml(front, complete=closed)
        if error:
            notes.append(Reason.CARD_UNPARSEABLE)
            problems.append(error)
    data = clean_value(data, report, max_chars=_VALUE_MAX_CHARS) if data else None
    if report.cleaned:
        notes.append(Reason.TEXT_CLEANED)

    meta = data or {}
    markdown = Markdown(body)
    summary = markdown.section(SUMMARY_HEADINGS) or markdown.lead()
    raw_languages = meta.get("language", meta.get("languages"))
    return CardInfo(
        data=data,
        pretty_name=_first(flat_strings(meta.get("pretty_name"))) or markdown.title(),
        licenses=declared_licenses(meta),
        languages=_lower(flat_strings(meta.get("language", meta.get("languages")))),
        multilinguality=_lower(flat_strings(meta.get("multilinguality"))),
        task_categories=_lower(flat_strings(meta.get("task_categories"))),
        task_ids=_lower(flat_strings(meta.get("task_ids"))),
        summary=summary,
        supported_tasks=markdown.section(SUPPORTED_TASKS_HEADINGS),
        data_fields=markdown.section(DATA_FIELDS_HEADINGS),
        notes=tuple(dict.fromkeys(notes)),
        problems=tuple(problems),
        licensing=markdown.section(LICENSING_HEADINGS),
        config_languages=_per_config(raw_languages),
        description_source="card" if summary else None,
    )


def _per_config(value: Any) -> dict[str, tuple[str, ...]]:
    """An old card's per-config languages (``language: {config: [codes]}``)."""
    if not isinstance(value, dict):
        return {}
    return {str(k): _lower(flat_strings(v)) for k, v in value.items() if flat_strings(v)}


# --- YAML header ------------------------------------------------------------------------------


def split_front_matter(text: str) -> tuple[str | None, str, bool]:
    """(YAML header or None, markdown body, whether the header was closed by ``---``)."""
    stripped = text.lstrip("\n \t")
    if not stripped.startswith("---"):
        return None, text, False
    lines = stripped.split("\n")
    if lines[0].strip() != "---":
        return None, text, False
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), True
    # No closing marker (a cut card, or a broken one): the header runs to the first heading.
    for i in range(1, len(lines)):
        if _HEADING.match(lines[i]):
            return "\n".join(lines[1:i]), "\n".join(lines[i:]), False
    return "\n".join(lines[1:]), "", False


def load_yaml(front: str, *, complete: bool = True) -> tuple[dict[str, Any] | None, str | None]:
    """The header as a dict and None, or what could be salvaged and the error."""
    data, error = _load_mapping(front)
    if error is None and complete:
        return data, None
    if error is None:
        error = "the YAML header is not closed by '---'"
    salvaged: dict[str, Any] = {}
    for block in top_level_blocks(front):
        part, part_error = _load_mapping(block)
        if part_error is None and part:
            salvaged.update(part)
    return salvaged or None, error


def _load_mapping(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        loaded = yaml.load(text, Loader=_Loader)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        return None, "invalid YAML header: " + " ".join(str(exc).split())[:300]
    except (RecursionError, MemoryError, ValueError, TypeError) as exc:
        return None, f"invalid YAML header: {type(exc).__name__}"
    if loaded is None:
        return None, None
    if not isinstance(loaded, dict):
        return None, f"the YAML header is a {type(loaded).__name__}, not a mapping"
    if _too_many_nodes(loaded, _YAML_MAX_NODES):
        return None, f"the YAML header expands to more than {_YAML_MAX_NODES:,} values"
    return loaded, None


def _too_many_nodes(value: Any, limit: int) -> bool:
    """Whether walking ``value`` visits more than ``limit`` nodes (iterative: depth-safe)."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def top_level_blocks(front: str) -> list[str]:
    """The header cut into top-level ``key: ...`` blocks (each parsed alone when salvaging)."""
    blocks: list[list[str]] = []
    for line in front.split("\n"):
        if _TOP_KEY.match(line) or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    return ["\n".join(b) for b in blocks]


def flat_strings(value: Any) -> list[str]:
    """Strings of a YAML value: a string, a list, or old cards' per-config dicts of lists."""
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or item == "":
            continue
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
        else:
            text = " ".join(str(item).split())
            if text:
                out.append(text[:200])
    return list(dict.fromkeys(out))


def _first(values: Sequence[str]) -> str | None:
    return values[0] if values else None


def declared_licenses(meta: Mapping[str, Any]) -> tuple[str, ...]:
    """The licenses a card's metadata declares (``license``, else ``licenses``), lower-cased,
    each once, in order."""
    return _lower(flat_strings(meta.get("license", meta.get("licenses"))))


def _lower(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))


# --- markdown sections ------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    """An ATX heading: its line, level and normalised title."""

    line: int
    level: int
    title: str


class Markdown:
    """A card's markdown body, split into lines and headings once."""

    def __init__(self, body: str) -> None:
        self.lines = body.split("\n")
        self.headings = _headings(self.lines)

    def section(self, names: Sequence[str]) -> str | None:
        """The cleaned text of the first section titled one of ``names`` (preferred in order)
        that says something, sub-sections included, up to the next heading of the same or a
        higher level."""
        for name in names:
            direct = name in _DIRECT_ONLY
            for index, heading in enumerate(self.headings):
                if heading.title != name:
                    continue
                end = next(
                    (
                        h.line
                        for h in self.headings[index + 1 :]
                        if direct or h.level <= heading.level
                    ),
                    len(self.lines),
                )
                raw = "\n".join(self.lines[heading.line + 1 : end])
                text = clean_markdown(_META_BULLET.sub("", raw) if direct else raw)
                if text:
                    return text
        return None

    def lead(self) -> str | None:
        """Prose between the title and the first sub-heading (cards without a summary section
        often open with one)."""
        if not self.headings:
            return clean_markdown("\n".join(self.lines)[:SECTION_MAX_CHARS])
        first = self.headings[0]
        start = first.line + 1 if first.level == 1 else 0
        end = next((h.line for h in self.headings if h.line >= start), len(self.lines))
        return clean_markdown("\n".join(self.lines[start:end]))

    def title(self) -> str | None:
        """The level-1 title without "Dataset Card for" (a fallback pretty name)."""
        for heading in self.headings:
            if heading.level == 1:
                raw = _HEADING.match(self.lines[heading.line])
                title = clean_markdown(raw.group(2)) if raw else None
                if title:
                    title = _TITLE.sub("", title).strip().strip("\"'`").strip()
                    return title[:200] or None
        return None


def _headings(lines: Sequence[str]) -> list[Heading]:
    """ATX headings outside code fences."""
    out: list[Heading] = []
    fence: str | None = None
    for i, line in enumerate(lines):
        if not line or line[0] not in "#`~ ":
            continue  # cheap test first: most lines are prose
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)[0] * 3
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
            continue
        if fence is not None:
            continue
        heading = _HEADING.match(line) if len(line) <= _MAX_HEADING else None
        if heading:
            out.append(Heading(i, len(heading.group(1)), _heading_key(heading.group(2))))
    return out


# Precompiled, and bounded where a hostile card could make a pattern scan quadratically.
# Link text may wrap onto the next line and hold one level of brackets ("[[2]](url)").
_LINK_TEXT = r"((?:\[[^\[\]\n]{0,100}\]|[^\[\]]){0,500})"
_LINK = re.compile(r"\[" + _LINK_TEXT + r"\]\([ \t]*[^)\s]{0,2000}[ \t]*\)")
_IMAGE = re.compile(r"!\[" + _LINK_TEXT + r"\]\([ \t]*[^)\s]{0,2000}[ \t]*\)")
_REF_LINK = re.compile(r"\[([^\]\n]{1,500})\]\[[^\]\n]{0,200}\]")
_LINK_DEFINITION = re.compile(r"^[ \t]*\[[^\]\n]{1,200}\]:[ \t]*\S+.*$", re.MULTILINE)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][^<>\n]{0,1000}>")
_STRONG = re.compile(r"(\*\*|__)(?=\S)([^\n]{1,500}?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]{1,500}?)(?<=\S)\*(?![\w*])")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")
_EMPTY_BULLET = re.compile(r"[-*+]\s*[^:]{1,60}:|[-*+]")
_BLOCK_START = re.compile(r"([-*+]|\d+[.)])\s|\|")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_PUNCTUATION = re.compile(r"[\s.:;,!]+$")
_HEADING_NOISE = re.compile(r"[*_`:]")
_MAX_SECTION_INPUT = SECTION_MAX_CHARS * 5  # markdown read per section before cleaning


def _heading_key(title: str) -> str:
    title = _HEADING_NOISE.sub("", _LINK.sub(r"\1", title))
    return " ".join(title.lower().split())


def clean_markdown(text: str) -> str | None:
    """Plain text of a markdown fragment: no HTML, images, link targets, emphasis, template
    placeholders; paragraphs kept; None when nothing real is left."""
    text = text[:_MAX_SECTION_INPUT]
    text = _COMMENT.sub("", text)
    text = _BREAK.sub("\n", text)
    text = _SCRIPT.sub("", text)
    text = _TAG.sub("", text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _LINK_DEFINITION.sub("", text)
    text = _PLACEHOLDER.sub("", text)
    text = html.unescape(text)
    text = _EMPHASIS.sub(r"\1", _STRONG.sub(r"\2", text)).replace("`", "")
    lines: list[str] = []
    joinable = False  # whether the previous line is prose that a wrapped line continues
    for raw in text.split("\n"):
        if _FENCE.match(raw) or _TABLE_RULE.match(raw):
            joinable = False
            continue  # fence markers, table rules
        heading = _HEADING.match(raw) if len(raw) <= _MAX_HEADING else None
        line = " ".join((heading.group(2) if heading else raw).split())
        if _EMPTY_BULLET.fullmatch(line):
            continue  # a bullet whose value was a placeholder
        block_start = bool(heading) or bool(_BLOCK_START.match(line))
        if line and joinable and not block_start and not raw.startswith(("    ", "\t")):
            lines[-1] += " " + line  # a hard-wrapped paragraph is one line of text
            continue
        lines.append(line)
        joinable = bool(line) and not heading and not line.startswith("|")
    out = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    if _EMPTY_SECTION.fullmatch(_TRAILING_PUNCTUATION.sub("", out)):
        return None
    return clean_text(out, limit=SECTION_MAX_CHARS) or None


# --- fallbacks: the Licensing section, dataset_infos.json --------------------------------------


def needs_infos(card: CardInfo) -> bool:
    """Whether ``dataset_infos.json`` could add what the card lacks: a license (neither the
    YAML header nor the Licensing section names one) or a summary."""
    return card.summary is None or (
        not usable_licenses(card.licenses) and not licenses_in_text(card.licensing)
    )


def parse_infos(raw: bytes | None) -> dict[str, dict[str, Any]]:
    """``dataset_infos.json`` as config -> info (empty when missing, cut or unreadable)."""
    if not raw:
        return {}
    try:
        data = json.loads(decode_bytes(raw)[0])
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)}


def _infos_licenses(infos: dict[str, dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for info in infos.values():
        text = info.get("license")
        if not isinstance(text, str) or not text.strip():
            continue
        as_id = normalize_license(text)
        named = [as_id] if license_class(as_id) != LicenseClass.UNKNOWN else []
        for lic in named or licenses_in_text(text):
            if lic not in found:
                found.append(lic)
    return found


def _infos_description(infos: dict[str, dict[str, Any]]) -> str | None:
    for info in infos.values():
        text = info.get("description")
        if isinstance(text, str) and text.strip():
            cleaned = clean_markdown(text)
            if cleaned:
                return cleaned
    return None


def complete_card(card: CardInfo, infos_raw: bytes | None = None) -> CardInfo:
    """The card with its license and summary completed from the fallbacks, and where each
    came from: a license from the YAML header (``card``), else the Licensing section
    (``card_text``), else ``dataset_infos.json`` (``dataset_infos``); a summary from the card,
    else the description in ``dataset_infos.json``. ``license_class`` is the class of the
    licenses kept (``unknown`` without any)."""
    infos = parse_infos(infos_raw)
    licenses, source = list(card.licenses), None
    if usable_licenses(card.licenses):
        source = "card"
    elif found := licenses_in_text(card.licensing):
        licenses, source = found, "card_text"
    elif found := _infos_licenses(infos):
        licenses, source = found, "dataset_infos"
    summary, description_source = card.summary, card.description_source
    if summary is None and (described := _infos_description(infos)):
        summary, description_source = described, "dataset_infos"
    usable = usable_licenses(licenses)
    return dataclasses.replace(
        card,
        licenses=tuple(licenses),
        license_source=source,
        license_class=dataset_license_class(usable).value,
        summary=summary,
        description_source=description_source,
    )
