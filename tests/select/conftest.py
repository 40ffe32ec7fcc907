"""Fixtures for selection tests: a store emptied of selections and cached vectors too, a factory
of published batches over it, and a tiny scorer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from dynosaur.settings import Settings
from tests.curate.factory import StoreFactory

_SELECT_TABLES = ("selection", "scoring_run", "instance_embedding", "task_embedding")
_HERE = Path(__file__).resolve().parent
_MISSING = [
    name
    for name in ("torch", "transformers", "sentence_transformers", "sklearn")
    if importlib.util.find_spec(name) is None
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the selection tests where the ``select`` extra is not installed."""
    if not _MISSING:
        return
    skip = pytest.mark.skip(reason=f"the select extra is missing: {', '.join(_MISSING)}")
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture
def select_store(store: Engine) -> Engine:
    """The migrated store with no data, no stored selections and no cached vectors."""
    with store.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(_SELECT_TABLES)} RESTART IDENTITY CASCADE")
    return store


@pytest.fixture
def factory(select_store: Engine, settings: Settings) -> StoreFactory:
    """A factory over the emptied store (for :func:`tests.select.factory.add_batch`)."""
    return StoreFactory(select_store, settings)


@pytest.fixture(scope="session")
def tiny_scorer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 and a word-level tokenizer trained on the factory's texts."""
    from dynosaur.select.scorer import prompt_text
    from dynosaur.select.tiny import make_tiny_scorer
    from tests.select.factory import ARITHMETIC, CHEMISTRY, SENTIMENT, SUMMARY, TRANSLATION

    texts = [
        prompt_text(task.instruction, x) + y
        for task in (SENTIMENT, TRANSLATION, ARITHMETIC, SUMMARY, CHEMISTRY)
        for x, y in task.rows
    ]
    return make_tiny_scorer(texts, tmp_path_factory.mktemp("tiny-scorer"))
