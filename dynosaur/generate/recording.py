"""Recording what the LLM answered: ledger row, generations, task rows and config states, in one
transaction per batch of calls, so a crash leaves every config either finished or still waiting.

Synchronous on purpose: the fan-out runs these in its store threads (through a
:class:`~dynosaur.generate.batcher.Batcher` for answers), never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from dynosaur.generate.client import CallFailed, LLMAnswer
from dynosaur.generate.cost import call_cost, count_prompt_tokens, count_text_tokens
from dynosaur.generate.ledger import CallRequest
from dynosaur.generate.parsing import ParsedAnswer, parse_answer
from dynosaur.reasons import Reason
from dynosaur.settings import ModelPrice
from dynosaur.store import generations, ledger
from dynosaur.store.generations import GenerationRow
from dynosaur.store.ledger import Answered, CallRecord


@dataclass(frozen=True)
class Finished:
    """A call to record: a fresh answer (to store in the ledger) or a stored record (reused),
    and the generations it answers."""

    call_id: int
    request: CallRequest
    members: list[GenerationRow]
    answer: LLMAnswer | None = None
    record: CallRecord | None = None


@dataclass(frozen=True)
class Outcome:
    """What recording one answer added: task rows, truncation, tokens and dollars."""

    tasks: int
    truncated: bool
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


def generation_state(answer: ParsedAnswer) -> tuple[str | None, str | None]:
    """The (reason, message) a succeeded generation carries."""
    if answer.truncated:
        reason: str | None = Reason.RESPONSE_TRUNCATED.value
        message: str | None = f"the answer was cut short; kept {len(answer.tasks)} complete task(s)"
    elif not answer.tasks:
        reason, message = Reason.NO_TASKS.value, "no task could be read from the answer"
    else:
        reason, message = None, None
    if answer.dropped:
        extra = f"{answer.dropped} proposal(s) beyond the per-config limit were not kept"
        message = f"{message}; {extra}" if message else extra
    return reason, message


def stop_message(reason: Reason) -> str:
    """The message of a generation deferred because the run stopped sending."""
    if reason is Reason.BUDGET_EXHAUSTED:
        return "the run's LLM budget was reached before this call started"
    return "the LLM endpoint rejected the API key; a run with a valid key sends this call"


class Recorder:
    """Writes the outcomes of one run's calls."""

    def __init__(self, engine: Engine, price: ModelPrice | None, tasks_per_config: int) -> None:
        self.engine = engine
        self.price = price
        self.tasks_per_config = tasks_per_config

    def _answered(self, item: Finished, answer: LLMAnswer) -> Answered:
        """The ledger's record of a fresh answer; endpoints that report no usage are charged by
        our own count."""
        request = item.request
        prompt_tokens = answer.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = count_prompt_tokens(request.messages, request.model)
        completion_tokens = answer.completion_tokens
        if completion_tokens is None:
            completion_tokens = count_text_tokens(answer.text, request.model)
        truncated = parse_answer(answer.text, finish_reason=answer.finish_reason).truncated
        return Answered(
            call_id=item.call_id,
            response=answer.text,
            finish_reason=answer.finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=call_cost(self.price, prompt_tokens, completion_tokens),
            latency_ms=answer.latency_ms,
            attempts=answer.attempts,
            notes=(Reason.RESPONSE_TRUNCATED.value,) if truncated else (),
        )

    def record(self, items: Sequence[Finished]) -> list[Outcome]:
        """Store answers, generations, tasks and config states for a batch (one transaction)."""
        fresh = [self._answered(item, item.answer) for item in items if item.answer is not None]
        usage = {a.call_id: (a.prompt_tokens, a.completion_tokens, a.cost_usd) for a in fresh}
        parsed: list[ParsedAnswer] = []
        with self.engine.begin() as conn:
            stored = ledger.mark_succeeded_many(conn, fresh)
            completions: list[generations.Completion] = []
            paid: set[int] = set()
            for item in items:
                record = stored[item.call_id] if item.answer is not None else item.record
                assert record is not None
                answer = parse_answer(
                    record.response, finish_reason=record.finish_reason, limit=self.tasks_per_config
                )
                parsed.append(answer)
                reason, message = generation_state(answer)
                for generation in item.members:
                    share = 0.0 if record.id in paid else record.cost_usd
                    paid.add(record.id)
                    completions.append(
                        generations.Completion(
                            generation,
                            record.id,
                            share,
                            reason,
                            message,
                            answer.tasks,
                            record.response,
                        )
                    )
            written = generations.complete_generations(conn, completions)
        outcomes = []
        for item, answer in zip(items, parsed, strict=True):
            tokens_in, tokens_out, cost = usage.get(item.call_id, (0, 0, 0.0))
            tasks = sum(written.get(g.id, 0) for g in item.members) if answer.tasks else 0
            outcomes.append(Outcome(tasks, answer.truncated, tokens_in, tokens_out, cost))
        return outcomes

    def record_failure(
        self, call_id: int, token: str, failure: CallFailed, members: list[GenerationRow]
    ) -> None:
        """Store a failed call; its generations fail (or are deferred, on an authentication
        error: not the config's fault, it waits for a run with a valid key)."""
        with self.engine.begin() as conn:
            ledger.mark_failed(
                conn,
                call_id,
                token,
                reason=failure.reason,
                message=str(failure),
                attempts=failure.attempts,
            )
            if failure.reason == Reason.LLM_AUTH_ERROR:
                generations.defer_generations(conn, members, failure.reason, str(failure))
            else:
                generations.fail_generations(conn, members, failure.reason, str(failure), call_id)

    def release(self, call_id: int, token: str, members: list[GenerationRow]) -> None:
        """Give back a claim that was never sent (the key was rejected meanwhile); its
        generations are deferred to a later run."""
        reason = Reason.LLM_AUTH_ERROR
        with self.engine.begin() as conn:
            ledger.release_claim(conn, call_id, token, reason=reason.value)
            generations.defer_generations(conn, members, reason.value, stop_message(reason))

    def defer(self, members: list[GenerationRow], reason: Reason) -> None:
        """Defer generations that were never claimed (the run stopped sending)."""
        with self.engine.begin() as conn:
            generations.defer_generations(conn, members, reason.value, stop_message(reason))
