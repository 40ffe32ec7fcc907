"""What a run sends: one job per (waiting config, prompt kind), with its request and hash."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.generate.ledger import CallRequest, request_hash
from dynosaur.generate.parsing import answer_schema
from dynosaur.generate.prompts import PromptBook, prompt_kinds_for
from dynosaur.model import ConfigMetadata
from dynosaur.settings import Settings
from dynosaur.store import generations


def is_reasoning_model(settings: Settings, model: str) -> bool:
    """Whether ``model`` belongs to a reasoning family (``llm_reasoning_models``: ``o3``,
    ``o4-mini``, ``gpt-5.1``, ``gpt-5-mini-2025-08-07``...; a provider prefix such as
    ``openai/`` is ignored). These reject ``max_tokens`` and any non-default temperature."""
    name = model.rsplit("/", 1)[-1].lower()
    return any(
        name == family or name.startswith((family + "-", family + "."))
        for family in (f.lower() for f in settings.llm_reasoning_models)
    )


def max_output_tokens(settings: Settings, model: str | None = None) -> int:
    """The output allowance of a request (reasoning tokens count against it for reasoning
    models, hence their own, larger setting)."""
    model = model or settings.llm_model
    if is_reasoning_model(settings, model):
        return settings.llm_reasoning_max_tokens
    return settings.llm_max_tokens


def request_parameters(settings: Settings, model: str | None = None) -> dict[str, Any]:
    """The parameters of every generation request (part of the request hash), as the model
    takes them: ``temperature`` and ``max_tokens`` for ordinary models (unchanged, so their
    ledger hashes hold); ``max_completion_tokens``, no temperature and ``reasoning_effort`` (when
    set) for reasoning-family models. ``llm_token_parameter`` forces the token parameter's name."""
    model = model or settings.llm_model
    reasoning = is_reasoning_model(settings, model)
    token_parameter = settings.llm_token_parameter
    if token_parameter == "auto":
        token_parameter = "max_completion_tokens" if reasoning else "max_tokens"
    parameters: dict[str, Any] = {token_parameter: max_output_tokens(settings, model)}
    if not reasoning:
        parameters["temperature"] = settings.llm_temperature
    elif settings.llm_reasoning_effort:
        parameters["reasoning_effort"] = settings.llm_reasoning_effort
    if settings.llm_structured_output:
        parameters["response_format"] = answer_schema(settings.tasks_per_config)
    return parameters


def repair_note(attempt: int) -> dict[str, Any]:
    """The user message added to attempt ``attempt`` (1 or more) of a prompt whose earlier
    answers were unusable. Fixed text per attempt number: a run that resumes after a crash
    builds the very same request."""
    return {
        "role": "user",
        "content": (
            f"(Attempt {attempt + 1}.) The previous answer could not be used: it was not a "
            "complete JSON list of tasks, or it was cut short. Answer again with only the JSON "
            "list, complete, and keep each task brief."
        ),
    }


def attempt_request(base: CallRequest, attempt: int) -> CallRequest:
    """Request number ``attempt`` (0: ``base`` itself) of a prompt: the base messages plus the
    repair note, hashed with the attempt number (:func:`~dynosaur.generate.ledger.request_hash`)."""
    if attempt <= 0:
        return base
    messages = (*base.messages, repair_note(attempt))
    digest = request_hash(
        base.model, messages, base.parameters, base.prompt_version, attempt=attempt
    )
    return CallRequest(digest, base.model, messages, base.parameters, base.prompt_version, attempt)


@dataclass(frozen=True)
class Job:
    """One prompt for one config."""

    config_id: int
    prompt_kind: str
    request: CallRequest

    def planned(self) -> generations.PlannedGeneration:
        """The generation row this job stands for."""
        return generations.PlannedGeneration(
            self.config_id,
            self.prompt_kind,
            self.request.request_hash,
            self.request.prompt_version,
        )


def plan_jobs(settings: Settings, engine: Engine, config_ids: Sequence[int]) -> list[Job]:
    """One job per (waiting config, prompt kind), in the order the ids were given; configs that
    no longer wait for generation are left out."""
    book = PromptBook.load(
        tasks_per_config=settings.tasks_per_config, structured=settings.llm_structured_output
    )
    model = settings.llm_model
    parameters = request_parameters(settings)
    metadata = generations.load_metadata(engine, config_ids)
    jobs: list[Job] = []
    for config_id in dict.fromkeys(config_ids):
        meta = metadata.get(config_id)
        if meta is None:
            continue
        for kind in prompt_kinds_for(meta, settings.prompt_kinds):
            prompt = book.prompt(meta, kind)
            digest = request_hash(model, prompt.messages, parameters, prompt.version)
            request = CallRequest(digest, model, prompt.messages, parameters, prompt.version)
            jobs.append(Job(config_id, kind.value, request))
    return jobs


def count_jobs(settings: Settings, engine: Engine, config_ids: Sequence[int]) -> int:
    """How many generations :func:`plan_jobs` plans for these configs that have not succeeded
    yet (what a run is to answer), from the card summaries alone: one small query, so a run
    knows its total before it plans its prompts."""
    if not config_ids:
        return 0
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.summary, array(SELECT g.prompt_kind FROM generation g "
                "WHERE g.config_id = c.id AND g.status = 'succeeded') AS done "
                "FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id "
                "WHERE c.id = ANY(:ids) AND c.status = ANY(:waiting)"
            ),
            {"ids": list(set(config_ids)), "waiting": list(generations.WAITING)},
        ).all()
    total = 0
    for summary, done in rows:
        meta = ConfigMetadata("", "", (), (), summary=summary)
        kinds = prompt_kinds_for(meta, settings.prompt_kinds)
        total += sum(1 for kind in kinds if kind.value not in (done or ()))
    return total
