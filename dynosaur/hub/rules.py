"""The skip rules of metadata collection, as pure decisions: a reason code and a message, or None.

Dataset level (from the card and the Hub's metadata): gated, private, no license, a license
class not allowed, language not allowed. Config level (from the features, then the sample
rows): media fields, at most one field, no rows, then the config's own language. The first
rule that applies wins; the order below is the order they are checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dynosaur.hub.card import CardInfo
from dynosaur.hub.features import Sample, usable_fields
from dynosaur.hub.language import (
    ConfigLanguage,
    after_rows,
    allowed_set,
    declared,
    is_allowed,
    language_code,  # noqa: F401 (where collect finds it)
)
from dynosaur.licenses import (
    DEFAULT_ALLOWED,
    LicenseClass,
    dataset_license_class,
    usable_licenses,
)
from dynosaur.model import FieldInfo
from dynosaur.reasons import Reason


@dataclass(frozen=True)
class Skip:
    """Why something is skipped: a reason code and a human message."""

    reason: Reason
    message: str


def dataset_skip(
    card: CardInfo,
    *,
    allowed_languages: Sequence[str],
    gated: bool,
    private: bool,
    allowed_licenses: frozenset[LicenseClass] = DEFAULT_ALLOWED,
    allow_code: bool = True,
) -> Skip | None:
    """The dataset-level rule that skips a dataset, if any. ``unknown`` languages declare
    nothing; ``code`` is allowed when ``allow_code``; each config's language is checked later
    (:mod:`dynosaur.hub.language`)."""
    if private:
        return Skip(Reason.PRIVATE, "the dataset is private")
    if gated:
        return Skip(Reason.GATED, "the dataset is gated: its files need an accepted agreement")
    if not usable_licenses(card.licenses):
        named = ", ".join(card.licenses) or "none"
        return Skip(
            Reason.NO_LICENSE,
            "neither the card, its Licensing section nor dataset_infos.json names a usable "
            f"license (declared: {named})",
        )
    usable = usable_licenses(card.licenses)
    klass = LicenseClass(card.license_class or dataset_license_class(usable))
    if klass not in allowed_licenses:
        taken = ", ".join(sorted(c.value for c in allowed_licenses)) or "none"
        return Skip(
            Reason.LICENSE_NOT_ALLOWED,
            f"license {', '.join(usable)} is {klass.value}; the collection takes {taken}",
        )
    allowed = allowed_set(allowed_languages)
    # A card without languages is not evidence of another language: only a declared list that
    # misses every allowed one skips the dataset.
    codes = declared(card.languages)
    if allowed and codes and not is_allowed(codes, allowed, allow_code=allow_code):
        shown = ", ".join(card.languages[:10]) + ("…" if len(card.languages) > 10 else "")
        return Skip(
            Reason.LANGUAGE_NOT_ALLOWED,
            f"card languages ({shown}) include none of {', '.join(sorted(allowed))}",
        )
    return None


def fields_skip(fields: Sequence[FieldInfo], media: Sequence[str]) -> Skip | None:
    """The config-level rule that skips a config from its features alone (before any row)."""
    if media:
        return Skip(Reason.MEDIA_FIELD, f"media fields: {', '.join(media[:10])}")
    if len(fields) <= 1:
        names = ", ".join(f.name for f in fields) or "none"
        return Skip(Reason.TOO_FEW_FIELDS, f"the rows have {len(fields)} field ({names})")
    return None


def sample_skip(sample: Sample) -> Skip | None:
    """The config-level rule that skips a config from its sample rows."""
    if not sample.rows:
        return Skip(Reason.NO_ROWS, "the viewer returned no rows")
    usable = usable_fields(sample)
    if len(usable) <= 1:
        names = ", ".join(f.name for f in usable) or "none"
        return Skip(
            Reason.TOO_FEW_FIELDS,
            f"only {len(usable)} field carries values in the sample rows ({names})",
        )
    return None


def language_skip(
    known: ConfigLanguage,
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[FieldInfo],
    allowed_languages: Sequence[str],
    *,
    allow_code: bool,
) -> tuple[ConfigLanguage, Skip | None]:
    """A config's language once its rows are read (what the card and the name told, else what
    the identifier finds in the rows), and the rule that skips it, if any: no allowed language
    (``language_not_allowed``), or no language declared and no text to find one in
    (``no_text``: a time series, a table of numbers)."""
    found = after_rows(known, rows, [f.name for f in fields])
    allowed = allowed_set(allowed_languages)
    if not allowed:
        return found, None
    if not found.known:
        return found, Skip(
            Reason.NO_TEXT,
            "no language is declared for this config and its sample rows hold no text to "
            "identify one in (numbers, dates, ids)",
        )
    if not is_allowed(found.codes, allowed, allow_code=allow_code):
        return found, Skip(
            Reason.LANGUAGE_NOT_ALLOWED,
            f"the config's languages ({', '.join(found.codes)}, {found.source}) include none "
            f"of {', '.join(sorted(allowed))}",
        )
    return found, None
