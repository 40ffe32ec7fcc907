"""Recording what the LLM answered: ledger row, generations, task rows and config states, in one
transaction per batch of calls, so a crash leaves every config either finished or still waiting.

Synchronous on purpose: the fan-out runs these in its store threads (through a
:class:`~dynosaur.generate.batcher.Batcher` for answers), never on the event loop.
"""

from __future__ import annotations

import json
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
    """What recording one answer added: task rows, truncation, tokens and dollars, and what
    becomes of its generations: ``done`` (succeeded), ``retry`` (the answer was unusable: the
    next attempt is to be sent) or ``failed`` (unusable, and no attempt is left)."""

    tasks: int
    truncated: bool
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    state: str = "done"
    unusable: bool = False  # a fresh answer (paid in this run) that could not be used


def usable(answer: ParsedAnswer, text: str) -> bool:
    """Whether an answer can be served: complete (not cut short) and holding a task, or a
    well-formed empty list (the model found no task: an answer, not a fault)."""
    if answer.truncated:
        return False
    if answer.tasks:
        return True
    try:
        value = json.loads(text.strip())
    except ValueError:
        return False
    return value == [] or value == {"tasks": []}


def unusable_message(answer: ParsedAnswer, answers: int) -> str:
    """The message of a generation that failed after ``answers`` unusable answers."""
    last = "cut short" if answer.truncated else "not a JSON list of tasks"
    return f"{answers} answer(s) could not be used; the last was {last}"


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


_STOP_MESSAGES = {
    Reason.BUDGET_EXHAUSTED: "the run's LLM budget was reached before this call started",
    Reason.LLM_AUTH_ERROR: "the LLM endpoint rejected the API key; a run with a valid key sends "
    "this call",
    Reason.LLM_QUOTA_EXHAUSTED: "the LLM account has no quota left (insufficient_quota); a run "
    "after a top-up sends this call",
}


def stop_message(reason: Reason) -> str:
    """The message of a generation deferred because the run stopped sending."""
    return _STOP_MESSAGES.get(
        reason,
        f"the LLM endpoint could not be reached ({reason.value}); the run stopped sending and a "
        "later run sends this call",
    )


class Recorder:
    """Writes the outcomes of one run's calls.

    ``max_unusable``: answers per prompt that may be unusable before its generation fails;
    ``max_deferrals`` and ``defer_s``: runs a transiently failing prompt is retried in, and the
    first wait before it is due again (doubling per run).
    """

    def __init__(
        self,
        engine: Engine,
        price: ModelPrice | None,
        tasks_per_config: int,
        *,
        max_unusable: int = 3,
        max_deferrals: int = 5,
        defer_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.price = price
        self.tasks_per_config = tasks_per_config
        self.max_unusable = max_unusable
        self.max_deferrals = max_deferrals
        self.defer_s = defer_s

    def _answered(self, item: Finished, answer: LLMAnswer, parsed: ParsedAnswer) -> Answered:
        """The ledger's record of a fresh answer; endpoints that report no usage are charged by
        our own count. An unusable answer is stored (it was paid) with the note
        ``llm_unusable_answer``: the next attempt is another request, so it is never reused."""
        request = item.request
        prompt_tokens = answer.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = count_prompt_tokens(request.messages, request.model)
        completion_tokens = answer.completion_tokens
        if completion_tokens is None:
            completion_tokens = count_text_tokens(answer.text, request.model)
        notes = []
        if parsed.truncated:
            notes.append(Reason.RESPONSE_TRUNCATED.value)
        if not usable(parsed, answer.text):
            notes.append(Reason.LLM_UNUSABLE_ANSWER.value)
        return Answered(
            call_id=item.call_id,
            response=answer.text,
            finish_reason=answer.finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=call_cost(self.price, prompt_tokens, completion_tokens),
            latency_ms=answer.latency_ms,
            attempts=answer.attempts,
            notes=tuple(notes),
        )

    def record(self, items: Sequence[Finished]) -> list[Outcome]:
        """Store answers, generations, tasks and config states for a batch (one transaction).

        An unusable answer (:func:`usable`) is not served: its generations stay pending for the
        next attempt, or fail with ``llm_unusable_answer`` once ``max_unusable`` answers were
        unusable (the complete tasks of a last answer that was cut short are kept instead)."""
        # Each answer is parsed once: for the ledger's notes and for the tasks.
        first = [
            parse_answer(
                item.answer.text,
                finish_reason=item.answer.finish_reason,
                limit=self.tasks_per_config,
            )
            if item.answer is not None
            else None
            for item in items
        ]
        fresh = [
            self._answered(item, item.answer, answer)
            for item, answer in zip(items, first, strict=True)
            if item.answer is not None and answer is not None
        ]
        usage = {a.call_id: (a.prompt_tokens, a.completion_tokens, a.cost_usd) for a in fresh}
        parsed: list[tuple[ParsedAnswer, str, bool]] = []
        with self.engine.begin() as conn:
            stored = ledger.mark_succeeded_many(conn, fresh)
            completions: list[generations.Completion] = []
            paid: set[int] = set()
            for item, mine in zip(items, first, strict=True):
                record = stored[item.call_id] if item.answer is not None else item.record
                assert record is not None
                if mine is not None and record.response == (item.answer and item.answer.text):
                    answer = mine  # our own answer was stored (not another worker's)
                else:
                    answer = parse_answer(
                        record.response,
                        finish_reason=record.finish_reason,
                        limit=self.tasks_per_config,
                    )
                answers = item.request.attempt + 1
                ok = usable(answer, record.response)
                if not ok and answers < self.max_unusable:
                    generations.mark_unusable(conn, item.members, record.id, answers)
                    parsed.append((answer, "retry", ok))
                    continue
                if not ok and not answer.tasks:
                    generations.fail_generations(
                        conn,
                        item.members,
                        Reason.LLM_UNUSABLE_ANSWER.value,
                        unusable_message(answer, answers),
                        record.id,
                    )
                    parsed.append((answer, "failed", ok))
                    continue
                parsed.append((answer, "done", ok))
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
        for item, (answer, state, ok) in zip(items, parsed, strict=True):
            tokens_in, tokens_out, cost = usage.get(item.call_id, (0, 0, 0.0))
            tasks = sum(written.get(g.id, 0) for g in item.members) if state == "done" else 0
            outcomes.append(
                Outcome(
                    tasks,
                    answer.truncated,
                    tokens_in,
                    tokens_out,
                    cost,
                    state=state,
                    unusable=not ok and item.answer is not None,
                )
            )
        return outcomes

    def record_failure(
        self, call_id: int, token: str, failure: CallFailed, members: list[GenerationRow]
    ) -> int:
        """Store a failed call and what becomes of its generations: deferred without counting an
        attempt when the run stops (rejected key, no quota: not the config's fault); deferred
        with one more attempt counted after a transient failure (failed at the cap); failed
        otherwise. Returns how many generations were deferred after a transient failure."""
        message = str(failure)
        with self.engine.begin() as conn:
            ledger.mark_failed(
                conn,
                call_id,
                token,
                reason=failure.reason,
                message=message,
                attempts=failure.attempts,
            )
            if failure.stops_run:
                generations.defer_generations(conn, members, failure.reason, message)
                return 0
            if failure.transient:
                return generations.retry_later(
                    conn,
                    members,
                    failure.reason,
                    message,
                    call_id,
                    max_attempts=self.max_deferrals,
                    defer_s=self.defer_s,
                )
            generations.fail_generations(conn, members, failure.reason, message, call_id)
            return 0

    def release(
        self, call_id: int, token: str, members: list[GenerationRow], reason: Reason
    ) -> None:
        """Give back a claim that was never sent (the run stopped meanwhile); its generations
        are deferred to a later run."""
        with self.engine.begin() as conn:
            ledger.release_claim(conn, call_id, token, reason=reason.value)
            generations.defer_generations(conn, members, reason.value, stop_message(reason))

    def defer(self, members: list[GenerationRow], reason: Reason) -> None:
        """Defer generations that were never claimed (the run stopped sending)."""
        with self.engine.begin() as conn:
            generations.defer_generations(conn, members, reason.value, stop_message(reason))
