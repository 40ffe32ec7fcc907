"""Selection over the store: the 0.5% coreset, learning percentage, replay sets.

One orchestration, :func:`select`, runs any method (:class:`Coreset`, :class:`LearningPercentage`,
:class:`Replay`): it reads version N of the collection, reuses stored embeddings (and perplexity
traces), and stores the result as a named selection that the ``selected_instance`` view lists.
The pure math is in :mod:`.budget`, :mod:`.coreset`, :mod:`.learning`, :mod:`.replay` and
:mod:`.geometry`; every SQL statement in :mod:`dynosaur.store.selections`.
"""

from __future__ import annotations

from dynosaur.errors import SelectionError
from dynosaur.select.methods import (
    CORESET_FRACTION,
    LEARNING_PERCENTAGE_FRACTION,
    METHODS,
    Coreset,
    LearningPercentage,
    Replay,
    SelectionMethod,
    method_for,
)
from dynosaur.select.service import (
    SelectionResult,
    select,
    select_coreset,
    select_learning_percentage,
    select_replay,
)
from dynosaur.store.selections import (
    StoredSelection,
    drop_selection,
    get_selection,
    list_selections,
    member_ids,
)

__all__ = [
    "CORESET_FRACTION",
    "LEARNING_PERCENTAGE_FRACTION",
    "METHODS",
    "Coreset",
    "LearningPercentage",
    "Replay",
    "SelectionError",
    "SelectionMethod",
    "SelectionResult",
    "StoredSelection",
    "drop_selection",
    "get_selection",
    "list_selections",
    "member_ids",
    "method_for",
    "select",
    "select_coreset",
    "select_learning_percentage",
    "select_replay",
]
