"""License classes: every id the shared snapshot uses falls in the right class."""

from __future__ import annotations

import pytest

from dynosaur.licenses import (
    LicenseClass,
    dataset_license_class,
    license_class,
    licenses_in_text,
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
        ("cc-by-2.1", LicenseClass.PERMISSIVE),  # any version of a CC license: same terms
        ("cc-by-nc-nd-1.0", LicenseClass.NO_DERIVATIVES),
        ("cc-by-sa", LicenseClass.SHARE_ALIKE),
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Released under the MIT License.", ["mit"]),
        ("MIT", ["mit"]),
        ("Researchers at MIT collected the data.", []),
        ("Apache License, Version 2.0", ["apache-2.0"]),
        ("CC BY-SA 4.0", ["cc-by-sa-4.0"]),
        (
            "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International",
            ["cc-by-nc-nd-4.0"],
        ),
        ("Creative Commons Attribution 4.0 International License", ["cc-by-4.0"]),
        ("licensed CC-BY-NC", ["cc-by-nc"]),
        ("GNU General Public License v3", ["gpl-3.0"]),
        ("LGPL-2.1", ["lgpl-2.1"]),
        ("The texts are in the public domain; annotations are CC0.", ["public-domain", "cc0-1.0"]),
        ("Open Database License (ODbL)", ["odbl"]),
        ("BSD 3-Clause", ["bsd-3-clause"]),
        ("Contact the authors for the license.", []),
        ("", []),
    ],
)
def test_licenses_named_in_free_text(text, expected):
    assert licenses_in_text(text) == expected


def test_licenses_in_text_name_known_ids_only():
    found = licenses_in_text("Code: Apache 2.0. Data: CC BY-NC-SA 4.0. Scripts: MIT License.")
    assert found == ["apache-2.0", "cc-by-nc-sa-4.0", "mit"]
    assert all(license_class(lic) is not LicenseClass.UNKNOWN for lic in found)
    assert dataset_license_class(found) is LicenseClass.NON_COMMERCIAL
