"""Fixtures of the curation tests: a factory of the rows curation reads."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from dynosaur.settings import Settings
from tests.curate.factory import StoreFactory


@pytest.fixture
def factory(store: Engine, settings: Settings) -> StoreFactory:
    """A factory over the emptied store."""
    return StoreFactory(store, settings)
