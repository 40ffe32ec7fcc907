"""Published batches of hand-written tasks, built by the real curate and publish steps over
rows that :class:`tests.curate.factory.StoreFactory` inserts (the growth pipeline is not needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from dynosaur.model import FieldInfo
from tests.curate.factory import StoreFactory

_serial = count(1)


@dataclass
class TaskRows:
    """One task and the rows of its data: (input, output) pairs, one instance each."""

    instruction: str
    rows: list[tuple[str, str]]
    category: str | None = "text-classification"


@dataclass
class Batch:
    """Ids of what :func:`add_batch` stored."""

    batch_id: int
    version: int | None
    task_ids: list[int] = field(default_factory=list)
    instance_ids: list[list[int]] = field(default_factory=list)


def add_batch(factory: StoreFactory, version: int | None, tasks: list[TaskRows]) -> Batch:
    """A batch with ``tasks`` (one dataset + config each, ``text`` -> ``label``) curated and, unless
    ``version`` is None, published as that version (it must be the next one)."""
    n = next(_serial)
    task_ids = []
    for t, task in enumerate(tasks):
        dataset = factory.dataset(
            f"org/ds-{n}-{t}", task_categories=[task.category] if task.category else []
        )
        rows = [{"text": text, "label": label} for text, label in task.rows]
        fields = [FieldInfo("text", "string"), FieldInfo("label", "string")]
        config = factory.config(dataset, rows=rows, fields=fields)
        task_ids.append(factory.task(config, task.instruction, ["text"], "label"))
    run_key = f"test-run-{n}"
    batch_id = factory.curate(run_key)
    if version is not None:
        published = factory.publish(run_key)
        assert published.version == version, f"batch {batch_id} became version {published.version}"
    valid = factory.rows(
        "SELECT id FROM task WHERE id = ANY(:ids) AND status = 'valid'", ids=task_ids
    )
    assert len(valid) == len(tasks), "every hand-written task must be valid"
    out = Batch(batch_id, version, task_ids)
    for task_id in task_ids:
        rows = factory.rows(
            "SELECT id FROM instance WHERE task_id = :t ORDER BY row_index", t=task_id
        )
        out.instance_ids.append([r.id for r in rows])
    return out


SENTIMENT = TaskRows(
    "Decide whether the movie review is positive or negative.",
    [(f"The film was {w} and the acting {a}.", lab)
     for w, a, lab in [("wonderful", "superb", "positive"), ("dull", "wooden", "negative"),
                       ("moving", "strong", "positive"), ("boring", "weak", "negative"),
                       ("delightful", "charming", "positive"), ("awful", "flat", "negative")]],
    "text-classification",
)  # fmt: skip
TRANSLATION = TaskRows(
    "Translate the English sentence into French.",
    [("Good morning.", "Bonjour."), ("Thank you very much.", "Merci beaucoup."),
     ("Where is the station?", "Où est la gare ?"), ("I like cheese.", "J'aime le fromage."),
     ("The cat sleeps.", "Le chat dort.")],
    "translation",
)  # fmt: skip
ARITHMETIC = TaskRows(
    "Compute the result of the arithmetic expression.",
    [(f"{a} + {b}", str(a + b)) for a, b in [(2, 3), (10, 7), (41, 1), (6, 6), (13, 29), (8, 0)]],
    "question-answering",
)
SUMMARY = TaskRows(
    "Write a one-sentence summary of the news article.",
    [("The city council approved a new budget for parks on Monday after a long debate.",
      "Council approves park budget."),
     ("Heavy rain flooded several streets downtown, closing shops for the day.",
      "Rain floods downtown streets."),
     ("A local team won the regional football championship in extra time.",
      "Local team wins championship."),
     ("Scientists found a new species of frog in the mountain forest.",
      "New frog species found.")],
    "summarization",
)  # fmt: skip
CHEMISTRY = TaskRows(
    "Give the chemical symbol of the element.",
    [("Gold", "Au"), ("Iron", "Fe"), ("Sodium", "Na"), ("Potassium", "K"), ("Silver", "Ag")],
    "question-answering",
)
