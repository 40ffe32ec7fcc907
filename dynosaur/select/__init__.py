"""Selection over the store: the 0.5% coreset, learning percentage, replay sets.

Each method reads version N of the collection, reuses stored embeddings (and perplexity traces),
and stores its result as a named selection that the ``selected_instance`` view lists.
"""

from __future__ import annotations

from dynosaur.select.pool import SelectionError
from dynosaur.select.service import (
    SelectionResult,
    select_coreset,
    select_learning_percentage,
    select_replay,
)
from dynosaur.select.stored import (
    StoredSelection,
    drop_selection,
    get_selection,
    list_selections,
    member_ids,
)

__all__ = [
    "SelectionError",
    "SelectionResult",
    "StoredSelection",
    "drop_selection",
    "get_selection",
    "list_selections",
    "member_ids",
    "select_coreset",
    "select_learning_percentage",
    "select_replay",
]
