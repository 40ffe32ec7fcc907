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

# Card license values that name no license: the dataset has none we can honour.
NO_LICENSE_VALUES = frozenset({"", "unknown", "none", "no-license", "noassertion", "n/a"})


def usable_licenses(licenses: Iterable[str]) -> list[str]:
    """The declared licenses that actually name one (``other`` does: a custom license)."""
    return [lic for lic in licenses if lic.strip().lower() not in NO_LICENSE_VALUES]


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
# Creative Commons ids without a version (free text often omits it): the class is the same.
_PERMISSIVE |= {"cc-by"}
_SHARE_ALIKE |= {"cc-by-sa"}
_NON_COMMERCIAL |= {"cc-by-nc", "cc-by-nc-sa"}
_NO_DERIVATIVES |= {"cc-by-nd", "cc-by-nc-nd"}

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


_CC_VERSIONED = re.compile(r"(cc-by(?:-nc)?(?:-nd|-sa)?)-\d(?:\.\d)?")


def license_class(license_id: str | None) -> LicenseClass:
    """The class of one license id (``unknown`` for anything not recognised)."""
    if not license_id:
        return LicenseClass.UNKNOWN
    normal = normalize_license(license_id)
    if normal not in _CLASS_OF and (cc := _CC_VERSIONED.fullmatch(normal)):
        normal = cc.group(1)  # another version of a Creative Commons license: same terms
    return _CLASS_OF.get(normal, LicenseClass.UNKNOWN)


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


# --- licenses named in free text (a card's Licensing section, dataset_infos.json) -------------

# Each pattern finds one family; the id is built from its groups. Bounded, case-insensitive.
_CC_SHORT = re.compile(
    r"\bcc[\s-]?by((?:[\s-](?:nc|nd|sa)){0,2})(?:[\s-]v?(\d\.\d))?\b", re.IGNORECASE
)
_CC_LONG = re.compile(
    r"creative\s+commons\s+attribution((?:[\s,-]+(?:non-?\s?commercial|share-?\s?alike|"
    r"no-?\s?deriv\w*)){0,2})(?:[\s,-]+(?:international|generic|unported)?\s*"
    r"(?:licen[cs]e)?\s*(?:\(cc[^)]{0,20}\))?\s*(?:version\s*|v)?(\d\.\d))?",
    re.IGNORECASE,
)
_CC0 = re.compile(r"\bcc[\s-]?0\b|\bcc[\s-]zero\b|creative\s+commons\s+zero", re.IGNORECASE)
_MIT = re.compile(
    r"\bMIT\s+licen[cs]e|licen[cs]ed\s+under\s+(?:the\s+)?MIT\b|\(MIT\)|^\W*MIT\W*$",
    re.IGNORECASE | re.MULTILINE,
)
_APACHE = re.compile(r"\bapache(?:\s+licen[cs]e)?,?\s*(?:version\s*|v)?2(?:\.0)?", re.IGNORECASE)
_GPL = re.compile(
    r"\b(a|l)?gpl[\s-]?v?(\d(?:\.\d)?)|gnu\s+(affero\s+|lesser\s+)?general\s+public\s+"
    r"licen[cs]e(?:,?\s*(?:version\s*|v)?(\d(?:\.\d)?))?",
    re.IGNORECASE,
)
_BSD = re.compile(r"\bbsd(?:[\s-](\d)[\s-]clause)?", re.IGNORECASE)
_ODBL = re.compile(r"\bodbl\b|open\s+database\s+licen[cs]e", re.IGNORECASE)
_ODC_BY = re.compile(r"\bodc[\s-]by\b|open\s+data\s+commons\s+attribution", re.IGNORECASE)
_PUBLIC_DOMAIN = re.compile(r"\bpublic\s+domain\b", re.IGNORECASE)
_MAX_TEXT = 20_000


def _cc_id(parts: str, version: str | None) -> str:
    flags = parts.lower()
    out = "cc-by"
    if "nc" in flags or "commercial" in flags:
        out += "-nc"
    if "nd" in re.findall(r"nd|sa", flags) or "deriv" in flags:
        out += "-nd"
    elif "sa" in re.findall(r"nd|sa", flags) or "alike" in flags:
        out += "-sa"
    return f"{out}-{version}" if version else out


def licenses_in_text(text: str | None) -> list[str]:
    """License ids named in free text (``Released under CC BY-SA 4.0`` -> ``cc-by-sa-4.0``),
    in the order first named; empty when the text names none we recognise."""
    if not text:
        return []
    text = text[:_MAX_TEXT]
    found: list[tuple[int, str]] = []
    for match in _CC_LONG.finditer(text):
        found.append((match.start(), _cc_id(match.group(1) or "", match.group(2))))
    for match in _CC_SHORT.finditer(text):
        found.append((match.start(), _cc_id(match.group(1) or "", match.group(2))))
    found += [(m.start(), "cc0-1.0") for m in _CC0.finditer(text)]
    found += [(m.start(), "mit") for m in _MIT.finditer(text)]
    found += [(m.start(), "apache-2.0") for m in _APACHE.finditer(text)]
    for match in _GPL.finditer(text):
        prefix = (match.group(1) or match.group(3) or "").strip().lower()
        kind = {"a": "agpl", "affero": "agpl", "l": "lgpl", "lesser": "lgpl"}.get(prefix, "gpl")
        version = match.group(2) or match.group(4)
        if version and "." not in version:
            version += ".0"
        found.append((match.start(), f"{kind}-{version}" if version else kind))
    for match in _BSD.finditer(text):
        clauses = match.group(1)
        found.append((match.start(), f"bsd-{clauses}-clause" if clauses else "bsd"))
    found += [(m.start(), "odbl") for m in _ODBL.finditer(text)]
    found += [(m.start(), "odc-by") for m in _ODC_BY.finditer(text)]
    found += [(m.start(), "public-domain") for m in _PUBLIC_DOMAIN.finditer(text)]
    return list(dict.fromkeys(lic for _, lic in sorted(found)))
