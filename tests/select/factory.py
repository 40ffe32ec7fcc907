"""Builds published batches in the store with plain SQL (the growth pipeline is not needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_serial = count(1)


@dataclass
class TaskRows:
    """One valid task and its instances: (input, output) pairs."""

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


def add_batch(engine: Engine, version: int | None, tasks: list[TaskRows]) -> Batch:
    """A batch with ``tasks`` (one dataset + config each); published as ``version`` unless None."""
    n = next(_serial)
    with engine.begin() as conn:
        state = "published" if version is not None else "building"
        batch_id = conn.execute(
            sa.text(
                "INSERT INTO batch (run_key, status, version, published_at) VALUES "
                "(:k, :s, :v, CASE WHEN :s = 'published' THEN now() END) RETURNING id"
            ),
            {"k": f"test-run-{n}", "s": state, "v": version},
        ).scalar_one()
        out = Batch(batch_id, version)
        for t, task in enumerate(tasks):
            dataset = conn.execute(
                sa.text(
                    "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, "
                    "task_categories, licenses, status) VALUES (:d, 'sha', 'created', "
                    "'https://huggingface.co/datasets/' || :d, :cats, '{mit}', 'collected') "
                    "RETURNING id"
                ),
                {"d": f"org/ds-{n}-{t}", "cats": [task.category] if task.category else []},
            ).scalar_one()
            config = conn.execute(
                sa.text(
                    "INSERT INTO dataset_config (hub_dataset_id, config_name, status, batch_id) "
                    "VALUES (:d, 'default', 'curated', :b) RETURNING id"
                ),
                {"d": dataset, "b": batch_id},
            ).scalar_one()
            call = conn.execute(
                sa.text(
                    "INSERT INTO llm_call (request_hash, model, prompt_version, messages, status, "
                    "response) VALUES (:h, 'm', 'v', '[]', 'succeeded', '[]') RETURNING id"
                ),
                {"h": f"h-{n}-{t}"},
            ).scalar_one()
            generation = conn.execute(
                sa.text(
                    "INSERT INTO generation (config_id, prompt_kind, request_hash, llm_call_id, "
                    "status) VALUES (:c, 'description_aware', :h, :l, 'succeeded') RETURNING id"
                ),
                {"c": config, "h": f"h-{n}-{t}", "l": call},
            ).scalar_one()
            task_id = conn.execute(
                sa.text(
                    "INSERT INTO task (config_id, generation_id, position, instruction, "
                    "input_fields, output_field, status, batch_id, fingerprint) VALUES "
                    "(:c, :g, 0, :i, '{text}', 'label', 'valid', :b, :f) RETURNING id"
                ),
                {"c": config, "g": generation, "i": task.instruction, "b": batch_id,
                 "f": f"fp-{n}-{t}"},
            ).scalar_one()  # fmt: skip
            ids = []
            for r, (text, label) in enumerate(task.rows):
                ids.append(
                    conn.execute(
                        sa.text(
                            "INSERT INTO instance (task_id, batch_id, row_index, instruction, "
                            "input, output, license, website, taskname) VALUES "
                            "(:t, :b, :r, :i, :x, :y, 'mit', 'https://huggingface.co', :d) "
                            "RETURNING id"
                        ),
                        {"t": task_id, "b": batch_id, "r": r, "i": task.instruction, "x": text,
                         "y": label, "d": f"org/ds-{n}-{t}"},
                    ).scalar_one()
                )  # fmt: skip
            out.task_ids.append(task_id)
            out.instance_ids.append(ids)
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
