"""License classes: every id the shared snapshot uses falls in the right class."""

from __future__ import annotations

import pytest

from dynosaur.licenses import (
    LicenseClass,
    dataset_license_class,
    license_class,
    normalize_license,
    parse_classes,
    terms_of,
)


@pytest.mark.parametrize(
    ("license_id", "expected"),
    [
        ("mit", LicenseClass.PERMISSIVE),
        ("apache-2.0", LicenseClass.PERMISSIVE),
        ("cc-by-4.0", LicenseClass.PERMISSIVE),
        ("cc0-1.0", LicenseClass.PERMISSIVE),
        ("CC BY-SA 4.0", LicenseClass.SHARE_ALIKE),
        ("gpl-3.0", LicenseClass.SHARE_ALIKE),
        ("odbl", LicenseClass.SHARE_ALIKE),
        ("cc-by-nc-4.0", LicenseClass.NON_COMMERCIAL),
        ("cc-by-nc-sa-3.0", LicenseClass.NON_COMMERCIAL),
        ("cc-by-nd-4.0", LicenseClass.NO_DERIVATIVES),
        ("cc-by-nc-nd-4.0", LicenseClass.NO_DERIVATIVES),
        ("other", LicenseClass.UNKNOWN),
        ("unknown", LicenseClass.UNKNOWN),
        ("c-uda", LicenseClass.UNKNOWN),
        (None, LicenseClass.UNKNOWN),
    ],
)
def test_license_class(license_id, expected):
    assert license_class(license_id) is expected


def test_a_dataset_takes_its_most_restrictive_license():
    assert dataset_license_class(["mit", "cc-by-nc-4.0"]) is LicenseClass.NON_COMMERCIAL
    assert dataset_license_class(["cc-by-sa-4.0", "mit"]) is LicenseClass.SHARE_ALIKE
    assert dataset_license_class(["mit", "other"]) is LicenseClass.UNKNOWN
    assert dataset_license_class([]) is LicenseClass.UNKNOWN


def test_names_normalise_to_hub_ids():
    assert normalize_license("Apache License 2.0") == "apache-2.0"
    assert normalize_license("MIT License") == "mit"


def test_parse_classes_names_the_unknown_ones():
    assert parse_classes("permissive, share-alike") == {
        LicenseClass.PERMISSIVE,
        LicenseClass.SHARE_ALIKE,
    }
    with pytest.raises(ValueError, match="copyleft"):
        parse_classes("permissive,copyleft")
    assert terms_of([LicenseClass.NON_COMMERCIAL, LicenseClass.PERMISSIVE])[0].startswith("Every")
