"""Features (the ``datasets`` serialisation the Dataset Viewer sends) turned into the fields the
prompts see, and sample rows turned into what the instance builder reads: ClassLabel integers
become label names, text is cleaned, long values are cut. Pure functions.

``datasets.Features.from_dict`` normalises old serialisations first (an old ``Sequence`` of a
dict is a dict of lists, exactly the shape of the rows); features it cannot read (a type from a
newer ``datasets``, absurd nesting) are walked as sent, so a strange feature never fails a config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dynosaur.hub.text import KEY_CHARS, CleanReport, clean_text, clean_value, cut_key
from dynosaur.model import FieldInfo
from dynosaur.reasons import Reason

# `_type` names of the datasets feature classes whose values are media files.
MEDIA_FEATURES = {
    "Image": "image",
    "Audio": "audio",
    "Video": "video",
    "Pdf": "pdf",
    "Nifti": "image",  # a medical image volume
    "Mesh": "video",  # 3-D data: no text either
}
_LIST_FEATURES = frozenset({"List", "Sequence", "LargeList"})
_TRANSLATION_FEATURES = frozenset({"Translation", "TranslationVariableLanguages"})
_MAX_TYPE_DEPTH = 6  # list<list<...>> deeper than this is shown as "..."
_MAX_WALK_DEPTH = 32
MAX_LIST_ITEMS = 1000  # per list value in a sample row


def normalise_features(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(features in the installed ``datasets`` serialisation, problem) for a viewer's features."""
    if not isinstance(raw, dict):
        return None, f"features are a {type(raw).__name__}, not a mapping"
    from datasets import Features  # heavy: only when collecting

    try:
        return Features.from_dict(raw).to_dict(), None
    except RecursionError:
        return raw, "features nest too deeply for datasets; read as sent"
    except Exception as exc:  # unknown or malformed types: read as sent
        return raw, f"datasets cannot read the features ({type(exc).__name__}); read as sent"


def features_from_viewer(listed: Any) -> dict[str, Any]:
    """The ``features`` list of a /first-rows or /rows answer as a name -> feature mapping."""
    out: dict[str, Any] = {}
    if isinstance(listed, list):
        for item in listed:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                out[item["name"]] = item.get("type")
    return out


def _kind(feature: Any) -> str | None:
    return feature.get("_type") if isinstance(feature, dict) else None


def _inner(feature: Any) -> Any:
    """The item feature of a list feature (``[x]``, ``List``, ``Sequence``, ``LargeList``)."""
    if isinstance(feature, list):
        return feature[0] if feature else None
    return feature.get("feature") if isinstance(feature, dict) else None


def _is_list(feature: Any) -> bool:
    return isinstance(feature, list) or _kind(feature) in _LIST_FEATURES


def _is_record(feature: Any) -> bool:
    return isinstance(feature, dict) and "_type" not in feature


def describe_feature(feature: Any, depth: int = 0) -> tuple[str, tuple[str, ...] | None]:
    """(readable type, ClassLabel names) of one feature, as :class:`FieldInfo` holds them."""
    if depth > _MAX_TYPE_DEPTH:
        return "...", None
    kind = _kind(feature)
    if kind == "Value":
        dtype = str(feature.get("dtype") or "unknown")
        return ("string" if dtype == "large_string" else dtype), None
    if kind == "ClassLabel":
        names = feature.get("names")
        labels = tuple(str(n) for n in names) if isinstance(names, list) else None
        return "class_label", labels
    if _is_list(feature):
        inner, labels = describe_feature(_inner(feature), depth + 1)
        return f"list<{inner}>", labels
    if kind in _TRANSLATION_FEATURES:
        return "translation", None
    if kind in MEDIA_FEATURES:
        return MEDIA_FEATURES[kind], None
    if kind and kind.startswith("Array"):
        return f"array<{feature.get('dtype') or 'unknown'}>", None
    if _is_record(feature):
        media = sorted({MEDIA_FEATURES[k] for k in _kinds(feature) if k in MEDIA_FEATURES})
        return ("dict<" + ",".join(media) + ">" if media else "dict"), None
    return (kind.lower() if kind else "unknown"), None


def _kinds(feature: Any) -> set[str]:
    """Every ``_type`` inside a feature (iterative: depth-safe)."""
    kinds: set[str] = set()
    stack = [feature]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("_type"), str):
                kinds.add(item["_type"])
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(item)
    return kinds


def has_media(feature: Any) -> bool:
    """Whether a feature is or holds an image, audio, video or similar file."""
    return bool(_kinds(feature) & MEDIA_FEATURES.keys())


def fields_of(features: dict[str, Any]) -> list[FieldInfo]:
    """The top-level fields of a config."""
    out = []
    for name, feature in features.items():
        ftype, labels = describe_feature(feature)
        if labels is not None:
            labels = tuple(clean_text(label, limit=KEY_CHARS) for label in labels)
        out.append(FieldInfo(name=cut_key(str(name)), type=ftype, labels=labels))
    return out


Converter = Callable[[Any], Any]


def label_converter(feature: Any, depth: int = 0) -> Converter | None:
    """A function that replaces the ClassLabel integers inside a value of ``feature`` by their
    names (-1, "no label", becomes None; integers out of range are kept), or None when the
    feature holds no ClassLabel. Built once per config, it walks only the branches that hold
    labels, and any value shape it does not expect passes through unchanged."""
    if depth > _MAX_WALK_DEPTH:
        return None
    kind = _kind(feature)
    if kind == "ClassLabel":
        names = feature.get("names")
        if not isinstance(names, list):
            return None
        return lambda value: _label(value, names)
    if _is_list(feature):
        inner_feature = _inner(feature)
        inner = label_converter(inner_feature, depth + 1)
        if inner is None:
            return None
        # An old Sequence of a dict that datasets could not normalise holds a dict of lists.
        columns = (
            _columns({k: {"feature": f, "_type": "List"} for k, f in inner_feature.items()}, depth)
            if _is_record(inner_feature)
            else None
        )

        def convert_list(value: Any) -> Any:
            if isinstance(value, list):
                return [inner(item) for item in value]
            if columns is not None and isinstance(value, dict):
                return columns(value)
            return value

        return convert_list
    if _is_record(feature):
        return _columns(feature, depth)
    return None


def _columns(record: dict[str, Any], depth: int) -> Converter | None:
    converters = {k: c for k, f in record.items() if (c := label_converter(f, depth + 1))}
    if not converters:
        return None

    def convert_record(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: converters[k](v) if k in converters else v for k, v in value.items()}

    return convert_record


def label_names(value: Any, feature: Any) -> Any:
    """``value`` with its ClassLabel integers named (see :func:`label_converter`)."""
    convert = label_converter(feature)
    return convert(value) if convert is not None else value


def sample_fields(features: dict[str, Any]) -> tuple[list[FieldInfo], str | None]:
    """The fields a config's sample shows, and the record field they came from: a config whose
    rows are one record (a translation pair, a nested dict) is flattened one level, so the
    record's keys become the fields (the prompts and instances need two fields or more)."""
    fields = fields_of(features)
    if len(fields) == 1:
        name = fields[0].name
        feature = features[name]
        if _kind(feature) == "Translation":
            languages = feature.get("languages") or []
            return [FieldInfo(name=cut_key(str(lang)), type="string") for lang in languages], name
        if _is_record(feature):
            return fields_of(feature), name
    return fields, None


def _label(value: Any, names: list[Any]) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if value == -1:
            return None
        if 0 <= value < len(names):
            return str(names[value])
    return value


@dataclass
class Sample:
    """A config's sample, ready to store: fields, rows, and the notes of what was changed."""

    fields: list[FieldInfo]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    flattened: str | None = None  # the record field whose keys became the fields


def build_sample(
    features: dict[str, Any],
    rows: list[Any],
    *,
    max_rows: int,
    max_chars: int,
    truncated_cells: bool = False,
) -> Sample:
    """Fields and cleaned rows of a config (see :func:`sample_fields`): ClassLabel names, text
    cleaned, values cut at ``max_chars``, at most ``max_rows`` rows."""
    report = CleanReport(truncated=truncated_cells)
    fields, flattened = sample_fields(features)
    convert = _columns(features, 0)
    kept: list[dict[str, Any]] = []
    for row in rows[:max_rows]:
        if not isinstance(row, dict):
            continue
        named = convert(row) if convert is not None else row
        if flattened is not None:
            named = named.get(flattened)
            if not isinstance(named, dict):
                continue
        kept.append(clean_value(named, report, max_chars=max_chars, max_items=MAX_LIST_ITEMS))
    notes: list[str] = []
    if report.cleaned:
        notes.append(Reason.TEXT_CLEANED)
    if report.truncated:
        notes.append(Reason.ROW_VALUES_TRUNCATED)
    return Sample(fields=fields, rows=kept, notes=notes, flattened=flattened)


def is_filled(value: Any) -> bool:
    """Whether a row value says anything (not None, not empty text or an empty container)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return bool(value)
    return True


def usable_fields(sample: Sample) -> list[FieldInfo]:
    """Fields that carry a value in at least one sample row."""
    return [f for f in sample.fields if any(is_filled(row.get(f.name)) for row in sample.rows)]
