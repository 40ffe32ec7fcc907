"""Skip rules: which datasets and configs are skipped, with which reason."""

from __future__ import annotations

import pytest

from dynosaur.hub.card import CardInfo
from dynosaur.hub.collect import pick_split, rank_configs
from dynosaur.hub.features import Sample
from dynosaur.hub.language import ConfigLanguage, before_rows, detect
from dynosaur.hub.rules import (
    dataset_skip,
    fields_skip,
    language_code,
    language_skip,
    sample_skip,
)
from dynosaur.licenses import LicenseClass
from dynosaur.model import FieldInfo
from dynosaur.reasons import Reason

EN_MIT = CardInfo(licenses=("mit",), languages=("en",))


def skip_reason(card: CardInfo, languages=("en",), gated=False, private=False) -> str | None:
    skip = dataset_skip(card, allowed_languages=languages, gated=gated, private=private)
    return skip.reason if skip else None


def test_a_licensed_english_dataset_is_kept() -> None:
    assert skip_reason(EN_MIT) is None


@pytest.mark.parametrize("licenses", [(), ("unknown",), ("none",), ("Unknown", "")])
def test_no_usable_license_skips(licenses: tuple[str, ...]) -> None:
    assert skip_reason(CardInfo(licenses=licenses, languages=("en",))) == Reason.NO_LICENSE


def test_one_usable_license_among_several_is_enough() -> None:
    assert skip_reason(CardInfo(licenses=("unknown", "cc-by-4.0"), languages=("en",))) is None


@pytest.mark.parametrize(
    ("languages", "allowed", "reason"),
    [
        (("de", "fr"), ("en",), Reason.LANGUAGE_NOT_ALLOWED),
        (("de", "en"), ("en",), None),
        (("en-US",), ("en",), None),
        (("eng",), ("en",), None),
        (("English",), ("en",), None),
        ((), ("en",), None),  # nothing declared is not evidence of another language
        (("de",), (), None),  # an empty allowed list allows every language
        (("de",), ("de", "en"), None),
        (("unknown",), ("en",), None),  # unknown declares nothing
        (("code",), ("en",), None),  # code is its own case, allowed by default
        (("code", "en"), ("en",), None),
    ],
)
def test_language_rule(languages: tuple[str, ...], allowed: tuple[str, ...], reason) -> None:
    assert skip_reason(CardInfo(licenses=("mit",), languages=languages), allowed) == reason


def test_private_and_gated_skip_before_license() -> None:
    assert skip_reason(CardInfo(), private=True) == Reason.PRIVATE
    assert skip_reason(CardInfo(), gated=True) == Reason.GATED


def test_language_codes_are_normalised() -> None:
    assert [language_code(c) for c in ("en", "EN_gb", "eng", "english", "zh-Hant")] == [
        "en",
        "en",
        "en",
        "en",
        "zh",
    ]


def test_config_rules_from_fields() -> None:
    two = [FieldInfo("a", "string"), FieldInfo("b", "string")]
    assert fields_skip(two, []) is None
    one = fields_skip(two[:1], [])
    assert one is not None and one.reason == Reason.TOO_FEW_FIELDS
    media = fields_skip([*two, FieldInfo("img", "image")], ["img"])
    assert media is not None and media.reason == Reason.MEDIA_FIELD


def test_config_rules_from_rows() -> None:
    fields = [FieldInfo("a", "string"), FieldInfo("b", "string")]
    empty = sample_skip(Sample(fields=fields, rows=[]))
    assert empty is not None and empty.reason == Reason.NO_ROWS
    one_filled = sample_skip(Sample(fields=fields, rows=[{"a": "x", "b": ""}]))
    assert one_filled is not None and one_filled.reason == Reason.TOO_FEW_FIELDS
    assert sample_skip(Sample(fields=fields, rows=[{"a": "x", "b": "y"}])) is None


def test_split_preference_is_train_then_validation_then_first() -> None:
    assert pick_split(["test", "validation", "train"]) == "train"
    assert pick_split(["test", "validation"]) == "validation"
    assert pick_split(["dev", "test"]) == "dev"
    assert pick_split([]) is None


def test_configs_named_after_an_allowed_language_come_first() -> None:
    names = ["ar", "bg", "de-fr", "de-en", "all_languages", "en"]
    assert rank_configs(names, ["en"]) == ["de-en", "en", "ar", "bg", "de-fr", "all_languages"]
    assert rank_configs(names, []) == names


@pytest.mark.parametrize(
    ("license", "reason"),
    [
        ("cc-by-nc-nd-4.0", Reason.LICENSE_NOT_ALLOWED),
        ("cc-by-nd-4.0", Reason.LICENSE_NOT_ALLOWED),
        ("other", Reason.LICENSE_NOT_ALLOWED),
        ("c-uda", Reason.LICENSE_NOT_ALLOWED),
        ("cc-by-nc-sa-4.0", None),
        ("gpl-3.0", None),
        ("apache-2.0", None),
    ],
)
def test_license_classes_outside_the_default_are_skipped(license: str, reason) -> None:
    assert skip_reason(CardInfo(licenses=(license,), languages=("en",))) == reason


def test_allowed_license_classes_and_code_are_settings() -> None:
    nd = CardInfo(licenses=("cc-by-nd-4.0",), languages=("en",))
    allowed = frozenset({LicenseClass.NO_DERIVATIVES})
    assert (
        dataset_skip(
            nd, allowed_languages=["en"], gated=False, private=False, allowed_licenses=allowed
        )
        is None
    )
    code = CardInfo(licenses=("mit",), languages=("code",))
    skip = dataset_skip(
        code, allowed_languages=["en"], gated=False, private=False, allow_code=False
    )
    assert skip is not None and skip.reason == Reason.LANGUAGE_NOT_ALLOWED


TEXT = [FieldInfo("text", "string"), FieldInfo("label", "string")]
ENGLISH_ROWS = [{"text": f"The film number {i} was a delight.", "label": "good"} for i in range(8)]
GERMAN_ROWS = [{"text": f"Der Film Nummer {i} war eine Freude.", "label": "good"} for i in range(8)]


def test_a_config_without_a_declared_language_is_identified_from_its_rows() -> None:
    found, skip = language_skip(ConfigLanguage(), ENGLISH_ROWS, TEXT, ["en"], allow_code=True)
    assert (found.codes, found.source, skip) == (("en",), "detected", None)
    found, skip = language_skip(ConfigLanguage(), GERMAN_ROWS, TEXT, ["en"], allow_code=True)
    assert found.codes == ("de",)  # an English label beside German text is not English
    assert skip is not None and skip.reason == Reason.LANGUAGE_NOT_ALLOWED


def test_rows_without_text_are_no_text_and_known_languages_are_not_detected() -> None:
    series = [{"start": "2020-01-01", "target": [1.0, 2.5], "item_id": f"T{i}"} for i in range(9)]
    fields = [FieldInfo("start", "string"), FieldInfo("target", "list<float32>")]
    found, skip = language_skip(ConfigLanguage(), series, fields, ["en"], allow_code=True)
    assert not found.known and skip is not None and skip.reason == Reason.NO_TEXT
    known = ConfigLanguage(("en",), "card")
    assert language_skip(known, GERMAN_ROWS, TEXT, ["en"], allow_code=True) == (known, None)
    assert language_skip(ConfigLanguage(), series, fields, [], allow_code=True)[1] is None


def test_a_parallel_config_has_both_languages() -> None:
    rows = [{"en": "The cat sleeps on the warm mat.", "de": "Die Katze schläft auf der Matte."}]
    assert set(detect(rows * 6, ["en", "de"])) == {"en", "de"}


@pytest.mark.parametrize(
    ("name", "languages", "info", "expected"),
    [
        ("mlsum_de", ("de", "en", "es"), None, (("de",), "config_name")),
        ("wiki_lingua_arabic", ("ar", "en"), None, (("ar",), "config_name")),
        ("xsum", ("de", "en", "es"), None, ((), None)),  # the rows will tell
        ("as_is", ("de", "en"), None, ((), None)),  # "as" is a word unless the card declares it
        ("default", ("en",), None, (("en",), "card")),
        ("java", ("code",), None, (("code",), "card")),
        ("ab", ("code", "de", "fr"), None, ((), None)),  # code among many languages
        (
            "de-en",
            ("de", "en"),
            {"features": {"t": {"_type": "Translation", "languages": ["de", "en"]}}},
            (("de", "en"), "translation"),
        ),
    ],
)
def test_language_before_rows(name: str, languages, info, expected) -> None:
    got = before_rows(name, CardInfo(languages=languages), info, frozenset({"en"}))
    assert (got.codes, got.source) == expected


def test_per_config_card_languages_come_first() -> None:
    card = CardInfo(languages=("de", "en"), config_languages={"x": ("de",)})
    assert before_rows("x", card, None, frozenset({"en"})).codes == ("de",)
