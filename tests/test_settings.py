"""Settings read from the environment the way users write them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dynosaur.settings import Settings


@pytest.mark.parametrize(("raw", "expected"), [("2.5", 2.5), ("0", 0.0), ("-1", None), ("", None)])
def test_a_negative_or_empty_budget_means_no_cap(
    raw: str, expected: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNOSAUR_BUDGET_USD", raw)
    assert Settings().budget_usd == expected


def test_a_budget_that_is_not_a_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNOSAUR_BUDGET_USD", "lots")
    with pytest.raises(ValidationError, match="budget_usd"):
        Settings()


def test_export_formats_and_folder(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DYNOSAUR_EXPORT_FORMATS", "jsonl, hf")
    monkeypatch.setenv("DYNOSAUR_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.export_formats == ["jsonl", "hf"]
    assert settings.export_root == tmp_path / "exports"


def test_the_readme_documents_every_setting() -> None:
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    missing = [n for n in Settings.model_fields if f"DYNOSAUR_{n.upper()}" not in readme]
    assert missing == []
