"""What a run sends: one job per (waiting config, prompt kind), with its request and hash."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from dynosaur.generate.ledger import CallRequest, request_hash
from dynosaur.generate.parsing import answer_schema
from dynosaur.generate.prompts import PromptBook, prompt_kinds_for
from dynosaur.settings import Settings
from dynosaur.store import generations


def request_parameters(settings: Settings) -> dict[str, Any]:
    """The sampling parameters of every generation request (part of the request hash)."""
    parameters: dict[str, Any] = {
        "temperature": settings.llm_temperature,
        "max_tokens": settings.llm_max_tokens,
    }
    if settings.llm_structured_output:
        parameters["response_format"] = answer_schema(settings.tasks_per_config)
    return parameters


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
