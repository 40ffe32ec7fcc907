"""License classes: what the license of a source dataset lets us do with instances built from it.

The Hub's cards name licenses by lower-case SPDX-like ids (``apache-2.0``, ``cc-by-nc-sa-4.0``,
``other``, ``unknown``). Each id falls in one class; a dataset with several licenses takes the
most restrictive class among them (an instance must honour all of them):

``permissive``      use, change and redistribute, with attribution at most (MIT, Apache, CC BY, CC0)
``share-alike``     redistribution of derivatives under the same terms (CC BY-SA, GPL, ODbL)
``non-commercial``  no commercial use (CC BY-NC, CC BY-NC-SA)
``no-derivatives``  no derivative works at all: an instruction built from a row is one (CC BY-ND)
``unknown``         ``other``, ``unknown``, or an id we do not recognise: terms we cannot read

Settings say which classes may enter the collection (default: all but ``no-derivatives`` and
``unknown``); exports can be restricted to some classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum


class LicenseClass(StrEnum):
    """What a license allows, from most to least permissive (value = the code stored in SQL)."""

    PERMISSIVE = "permissive"
    SHARE_ALIKE = "share-alike"
    NON_COMMERCIAL = "non-commercial"
    NO_DERIVATIVES = "no-derivatives"
    UNKNOWN = "unknown"


# Most restrictive last: a dataset with several licenses takes the highest rank among them.
_RANK = {c: i for i, c in enumerate(LicenseClass)}

DEFAULT_ALLOWED: frozenset[LicenseClass] = frozenset(
    {LicenseClass.PERMISSIVE, LicenseClass.SHARE_ALIKE, LicenseClass.NON_COMMERCIAL}
)

TERMS: dict[LicenseClass, str] = {
    LicenseClass.PERMISSIVE: (
        "Every source allows use, modification and redistribution, including commercial use, "
        "with attribution at most."
    ),
    LicenseClass.SHARE_ALIKE: (
        "Some sources require that redistributed derivatives keep the same license terms "
        "(share-alike / copyleft)."
    ),
    LicenseClass.NON_COMMERCIAL: "Some sources forbid commercial use.",
    LicenseClass.NO_DERIVATIVES: "Some sources forbid derivative works.",
    LicenseClass.UNKNOWN: "Some sources' license terms are unknown or custom.",
}

_PERMISSIVE = {
    "mit", "apache-2.0", "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "isc",
    "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc", "unlicense", "wtfpl",
    "zlib", "pddl", "odc-by", "afl-3.0", "artistic-2.0", "bsl-1.0", "ecl-2.0", "ms-pl",
    "postgresql", "ncsa", "etalab-2.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "ofl-1.1",
    "lppl-1.3c", "apple-ascl", "openrail", "openrail++", "creativeml-openrail-m",
    "bigscience-openrail-m", "bigcode-openrail-m", "bigscience-bloom-rail-1.0", "mit-0", "0bsd",
    "public-domain", "pd",
}  # fmt: skip
_SHARE_ALIKE = {
    "cc-by-sa-2.0", "cc-by-sa-2.5", "cc-by-sa-3.0", "cc-by-sa-4.0", "gpl", "gpl-2.0", "gpl-3.0",
    "lgpl", "lgpl-2.1", "lgpl-3.0", "lgpl-lr", "agpl-3.0", "gfdl", "odbl", "cdla-sharing-1.0",
    "epl-1.0", "epl-2.0", "eupl-1.1", "eupl-1.2", "mpl-2.0", "osl-3.0",
}  # fmt: skip
_NON_COMMERCIAL = {
    "cc-by-nc-2.0", "cc-by-nc-2.5", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nc-sa-2.0",
    "cc-by-nc-sa-2.5", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
}  # fmt: skip
_NO_DERIVATIVES = {
    "cc-by-nd-2.0", "cc-by-nd-3.0", "cc-by-nd-4.0", "cc-by-nc-nd-2.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0",
}  # fmt: skip

_CLASS_OF: dict[str, LicenseClass] = {
    **dict.fromkeys(_PERMISSIVE, LicenseClass.PERMISSIVE),
    **dict.fromkeys(_SHARE_ALIKE, LicenseClass.SHARE_ALIKE),
    **dict.fromkeys(_NON_COMMERCIAL, LicenseClass.NON_COMMERCIAL),
    **dict.fromkeys(_NO_DERIVATIVES, LicenseClass.NO_DERIVATIVES),
}


def normalize_license(value: str) -> str:
    """A license name as the Hub spells ids: lower case, hyphens (``CC BY-SA 4.0`` ->
    ``cc-by-sa-4.0``, ``Apache License 2.0`` -> ``apache-2.0``)."""
    text = value.strip().lower()
    text = re.sub(r"\blicen[cs]e\b|\bversion\b|\bv(?=\d)", " ", text)
    text = re.sub(r"[\s_/]+", "-", text.strip())
    text = re.sub(r"-+", "-", text).strip("-")
    return text


def license_class(license_id: str | None) -> LicenseClass:
    """The class of one license id (``unknown`` for anything not recognised)."""
    if not license_id:
        return LicenseClass.UNKNOWN
    return _CLASS_OF.get(normalize_license(license_id), LicenseClass.UNKNOWN)


def dataset_license_class(license_ids: Iterable[str]) -> LicenseClass:
    """The class of a dataset: the most restrictive among its licenses (``unknown`` if none)."""
    classes = [license_class(i) for i in license_ids]
    if not classes:
        return LicenseClass.UNKNOWN
    return max(classes, key=_RANK.__getitem__)


def parse_classes(text: str | Iterable[str]) -> frozenset[LicenseClass]:
    """License classes from a comma list or an iterable of names (``permissive,share-alike``);
    raises ValueError naming the unknown ones."""
    names = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    known = {c.value: c for c in LicenseClass} | {c.name.lower(): c for c in LicenseClass}
    unknown = [n for n in names if n.lower() not in known]
    if unknown:
        raise ValueError(
            f"unknown license class(es) {', '.join(unknown)}; "
            f"choose from {', '.join(c.value for c in LicenseClass)}"
        )
    return frozenset(known[n.lower()] for n in names)


def terms_of(classes: Iterable[LicenseClass]) -> list[str]:
    """What a collection of these classes obliges its users to (one sentence per class beyond
    permissive), most permissive first."""
    return [TERMS[c] for c in sorted(set(classes), key=_RANK.__getitem__)]
