"""Skip rules: which datasets and configs are skipped, with which reason."""

from __future__ import annotations

import pytest

from dynosaur.hub.card import CardInfo
from dynosaur.hub.collect import pick_split, rank_configs
from dynosaur.hub.features import Sample
from dynosaur.hub.rules import dataset_skip, fields_skip, language_code, sample_skip
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
