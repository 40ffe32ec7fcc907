"""Card parsing: the YAML header, the sections the prompts use, and broken or hostile cards."""

from __future__ import annotations

import pytest

from dynosaur.hub.card import (
    clean_markdown,
    complete_card,
    load_yaml,
    needs_infos,
    parse_card,
    split_front_matter,
)
from dynosaur.reasons import Reason
from tests.conftest import SHARED_SNAPSHOT

CLASSIC = b"""---
license: cc-by-4.0
language:
- en
multilinguality:
- monolingual
task_categories:
- question-answering
task_ids:
- extractive-qa
pretty_name: Tiny QA
---

# Dataset Card for "tiny_qa"

## Dataset Description

- **Homepage:** [https://example.org](https://example.org)
- **Paper:** [More Information Needed](https://github.com/huggingface/datasets/blob/main/CONTRIBUTING.md)

### Dataset Summary

Tiny QA asks **short** questions about
a passage of <b>Wikipedia</b> text. See [the site](https://example.org).
<!-- a comment nobody should read -->

### Supported Tasks and Leaderboards

[More Information Needed](https://github.com/huggingface/datasets/blob/main/CONTRIBUTING.md)

## Dataset Structure

### Data Fields

#### plain_text
- `question`: a `string` feature.
- `answer`: a `string` feature.

```
## not a heading: inside a code fence
```
"""


def test_classic_card_gives_metadata_and_clean_sections() -> None:
    card = parse_card(CLASSIC)
    assert card.licenses == ("cc-by-4.0",)
    assert card.languages == ("en",)
    assert card.multilinguality == ("monolingual",)
    assert card.task_categories == ("question-answering",)
    assert card.task_ids == ("extractive-qa",)
    assert card.pretty_name == "Tiny QA"
    assert card.summary == (
        "Tiny QA asks short questions about a passage of Wikipedia text. See the site."
    )
    assert card.supported_tasks is None  # only a placeholder
    assert card.data_fields is not None
    assert "question: a string feature." in card.data_fields
    assert "plain_text" in card.data_fields
    assert card.notes == ()


def test_new_template_description_is_the_summary_without_metadata_bullets() -> None:
    card = parse_card(
        b"---\nlicense: mit\n---\n# Dataset Card for Recipes\n\n## Dataset Details\n\n"
        b"### Dataset Description\n\n<!-- Provide a longer summary of what this dataset is. -->\n\n"
        b"Step-by-step recipes scraped from a cooking forum.\n\n"
        b"- **Curated by:** [More Information Needed]\n- **License:** mit\n\n"
        b"### Dataset Sources\n\n- **Repository:** https://example.org\n\n"
        b"## Uses\n\n### Direct Use\n\nTrain models that write recipes.\n"
    )
    assert card.summary == "Step-by-step recipes scraped from a cooking forum."
    assert card.supported_tasks == "Train models that write recipes."
    assert card.pretty_name == "Recipes"  # from the title: the YAML has no pretty_name


def test_card_without_summary_section_uses_its_lead_paragraph() -> None:
    card = parse_card(
        b"---\nlicense: mit\n---\n# Jokes\n\nOne-line jokes, one per row.\n\n## Use\n"
    )
    assert card.summary == "One-line jokes, one per row."


@pytest.mark.parametrize(
    "placeholder",
    [
        "[More Information Needed]",
        "[More Information Needed](https://github.com/huggingface/datasets)",
        "[Needs More Information]",
        "TODO",
        "N/A",
        "<!-- Provide a quick summary of the dataset. -->",
        "- **Homepage:** [More Information Needed]",
    ],
)
def test_placeholder_sections_give_no_text(placeholder: str) -> None:
    assert clean_markdown(placeholder) is None


def test_old_cards_per_config_languages_and_license_list_are_flattened() -> None:
    card = parse_card(
        b"---\nlicenses:\n- cc-by-sa-3.0\n- gfdl\n"
        b"languages:\n  de-en: [de, en]\n  fr-en: [fr, en]\n---\n"
    )
    assert card.licenses == ("cc-by-sa-3.0", "gfdl")
    assert card.languages == ("de", "en", "fr")


def test_malformed_yaml_is_noted_and_the_readable_keys_kept() -> None:
    card = parse_card(
        b"---\nlicense: apache-2.0\ntask_categories: [summarization\nlanguage:\n- en\n---\n"
        b"## Dataset Summary\n\nNews articles with their summaries.\n"
    )
    assert card.notes == (Reason.CARD_UNPARSEABLE,)
    assert card.problems and "YAML" in card.problems[0]
    assert card.licenses == ("apache-2.0",)  # salvaged block by block
    assert card.languages == ("en",)
    assert card.task_categories == ()
    assert card.summary == "News articles with their summaries."


def test_yaml_that_is_not_a_mapping_is_unparseable() -> None:
    data, error = load_yaml("- a\n- b\n")
    assert data is None
    assert error is not None


def test_yaml_alias_bomb_is_refused_not_expanded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    )
    card = parse_card(f"---\n{bomb}license: mit\n---\nbody\n".encode())
    assert Reason.CARD_UNPARSEABLE in card.notes


def test_unclosed_front_matter_is_read_up_to_the_first_heading() -> None:
    front, body, closed = split_front_matter("---\nlicense: mit\n# Title\ntext\n")
    assert (front, closed) == ("license: mit", False)
    assert body.startswith("# Title")


def test_nul_bytes_and_invalid_utf8_in_a_card_are_cleaned_and_noted() -> None:
    raw = (
        b"---\nlicense: mit\npretty_name: Bad\x00Name\n---\n"
        b"## Dataset Summary\n\nCaf\xe9 \x00menu\xff items.\n"
    )
    card = parse_card(raw)
    assert Reason.TEXT_CLEANED in card.notes
    assert card.pretty_name == "BadName"
    assert card.summary == "Caf\ufffd menu\ufffd items."
    assert "\x00" not in repr(card)


def test_a_cut_card_is_noted_too_large_and_still_parsed() -> None:
    card = parse_card(CLASSIC[:700], truncated=True)
    assert Reason.CARD_TOO_LARGE in card.notes
    assert card.licenses == ("cc-by-4.0",)


def test_pathological_markdown_stays_fast_and_bounded() -> None:
    hostile = ("**a [b " * 200_000).encode()  # unclosed emphasis and links, one long line
    card = parse_card(b"---\nlicense: mit\n---\n## Dataset Summary\n\n" + hostile)
    assert card.summary is not None
    assert len(card.summary) <= 10_000


@pytest.mark.shared_snapshot
@pytest.mark.parametrize(
    ("dataset", "licenses", "summary_start"),
    [
        ("ag_news", ("unknown",), "AG is a collection of more than 1 million news articles."),
        ("squad", ("cc-by-4.0",), "Stanford Question Answering Dataset (SQuAD) is a reading"),
        ("glue", ("cc-by-4.0",), "GLUE, the General Language Understanding Evaluation"),
    ],
)
def test_real_cards_golden(dataset: str, licenses: tuple[str, ...], summary_start: str) -> None:
    card = parse_card((SHARED_SNAPSHOT / "datasets" / dataset / "README.md").read_bytes())
    assert card.licenses == licenses
    assert card.summary is not None and card.summary.startswith(summary_start)
    assert "More Information Needed" not in (card.summary + (card.data_fields or ""))
    assert card.data_fields is not None
    assert card.notes == ()


def test_old_cards_per_config_languages_are_kept_per_config() -> None:
    info = parse_card(b"---\nlicense: mit\nlanguage:\n  en: [en]\n  fr_config: [fr]\n---\n# T\n")
    assert info.config_languages == {"en": ("en",), "fr_config": ("fr",)}
    assert parse_card(b"---\nlanguage: [en]\n---\n").config_languages == {}


LICENSING = b"""---
license: unknown
language: [en]
---
# T

## Dataset Summary

[More Information Needed]

## Licensing Information

The data is released under a Creative Commons Attribution-ShareAlike 4.0 license.
"""


def test_a_license_from_the_licensing_section_when_the_yaml_says_unknown() -> None:
    card = parse_card(LICENSING)
    assert card.licensing is not None and needs_infos(card)  # no summary either
    done = complete_card(card)
    assert done.licenses == ("cc-by-sa-4.0",)
    assert (done.license_source, done.license_class) == ("card_text", "share-alike")
    assert done.summary is None and done.description_source is None


def test_dataset_infos_give_the_license_and_the_description_last() -> None:
    card = parse_card(b"---\nlicense: unknown\n---\n# T\n\n## Dataset Summary\n\nTBD\n")
    infos = (
        b'{"a": {"license": "", "description": ""}, "b": {"license": "MIT",'
        b' "description": "Reviews of <b>films</b>."}}'
    )
    done = complete_card(card, infos)
    assert (done.licenses, done.license_source, done.license_class) == (
        ("mit",),
        "dataset_infos",
        "permissive",
    )
    assert (done.summary, done.description_source) == ("Reviews of films.", "dataset_infos")


def test_the_yaml_license_wins_and_broken_infos_are_ignored() -> None:
    card = parse_card(b"---\nlicense: cc-by-nc-nd-4.0\n---\n# T\n\n## Dataset Summary\n\nRows.\n")
    assert not needs_infos(card)
    done = complete_card(card, b'{"a": {"license": "MIT"')
    assert (done.license_source, done.license_class) == ("card", "no-derivatives")
    assert done.description_source == "card"
    nothing = complete_card(parse_card(b"---\nlicense: unknown\n---\n# T\n"), b"[1, 2]")
    assert (nothing.license_source, nothing.license_class) == (None, "unknown")
    assert nothing.licenses == ("unknown",)
