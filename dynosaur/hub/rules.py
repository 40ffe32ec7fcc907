"""The skip rules of metadata collection, as pure decisions: a reason code and a message, or None.

Dataset level (from the card and the Hub's metadata): gated, private, no license, language not
allowed. Config level (from the features, then the sample rows): media fields, at most one
field, no rows. The first rule that applies wins; the order below is the order they are checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dynosaur.hub.card import CardInfo
from dynosaur.hub.features import Sample, usable_fields
from dynosaur.model import FieldInfo
from dynosaur.reasons import Reason

# A card that says its license is unknown grants nothing: the original Dynosaur kept only
# datasets with a declared license, and every instance must carry one.
NO_LICENSE_VALUES = frozenset({"", "unknown", "none", "no-license", "noassertion", "n/a"})
# Spellings of language codes seen on cards, mapped to the ISO 639-1 code settings use.
_LANGUAGE_ALIASES = {"english": "en", "eng": "en"}


@dataclass(frozen=True)
class Skip:
    """Why something is skipped: a reason code and a human message."""

    reason: Reason
    message: str


def usable_licenses(licenses: Sequence[str]) -> list[str]:
    """The declared licenses that actually name one."""
    return [lic for lic in licenses if lic.strip().lower() not in NO_LICENSE_VALUES]


def language_code(value: str) -> str:
    """``en`` for ``en``, ``en-US``, ``en_GB``, ``eng``, ``English``."""
    code = value.strip().lower().replace("_", "-").split("-")[0]
    return _LANGUAGE_ALIASES.get(code, code)


def dataset_skip(
    card: CardInfo, *, allowed_languages: Sequence[str], gated: bool, private: bool
) -> Skip | None:
    """The dataset-level rule that skips a dataset, if any."""
    if private:
        return Skip(Reason.PRIVATE, "the dataset is private")
    if gated:
        return Skip(Reason.GATED, "the dataset is gated: its files need an accepted agreement")
    if not usable_licenses(card.licenses):
        declared = ", ".join(card.licenses) or "none"
        return Skip(
            Reason.NO_LICENSE, f"the card declares no usable license (declared: {declared})"
        )
    allowed = {language_code(lang) for lang in allowed_languages if lang.strip()}
    # A card without languages is not evidence of another language: only a declared list that
    # misses every allowed one skips the dataset.
    codes = {language_code(lang) for lang in card.languages}
    if allowed and codes and not allowed & codes:
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
