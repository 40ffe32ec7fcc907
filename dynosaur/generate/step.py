"""The generate step: collected configs -> prompts -> LLM calls through the ledger -> task rows.

``generate`` is synchronous (Airflow and the CLI call it as is) and runs an asyncio fan-out inside:
one semaphore bounds the requests in flight; each request is claimed in the ledger, sent with
retries, and recorded (ledger row, generation, tasks, config state) in one transaction, so a crash
at any point leaves every config either finished or still ``collected`` for the next run.
Store access runs in a small thread pool so that the event loop never waits on Postgres.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import LLMAuthError
from dynosaur.generate import records
from dynosaur.generate.client import CallFailed, LLMAnswer, LLMClient
from dynosaur.generate.cost import (
    call_cost,
    count_prompt_tokens,
    count_text_tokens,
    model_price,
    prompt_tokens_bound,
    reservation,
    run_budget,
    token_method,
)
from dynosaur.generate.ledger import (
    Answered,
    CallRecord,
    CallRequest,
    Claim,
    Ledger,
    mark_failed,
    mark_succeeded_many,
    release_claim,
    release_token,
    request_hash,
)
from dynosaur.generate.parsing import ParsedAnswer, answer_schema, parse_answer
from dynosaur.generate.prompts import PromptBook, prompt_kinds_for
from dynosaur.generate.records import GenerationRow
from dynosaur.model import StepSummary
from dynosaur.progress import NullProgress, Progress
from dynosaur.reasons import Reason
from dynosaur.settings import ModelPrice, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

STEP = "generate"
_DB_THREADS = 4
_BUSY_POLL_S = 2.0


def generate_queue(settings: Settings, engine: Engine, *, limit: int | None = None) -> list[int]:
    """Ids of the configs waiting for task generation (status ``collected``, including those a
    previous run left pending for lack of budget), oldest first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT id FROM dataset_config WHERE status = 'collected' ORDER BY id "
                    "LIMIT :limit"
                ),
                {"limit": limit},
            ).scalars()
        )


def request_parameters(settings: Settings) -> dict[str, Any]:
    """The sampling parameters of every generation request (part of the request hash)."""
    parameters: dict[str, Any] = {
        "temperature": settings.llm_temperature,
        "max_tokens": settings.llm_max_tokens,
    }
    if settings.llm_structured_output:
        parameters["response_format"] = answer_schema(settings.tasks_per_config)
    return parameters


def lease_seconds(settings: Settings) -> float:
    """How long an in-flight claim is honoured: twice the longest a call's attempts can last."""
    attempts = settings.llm_max_retries + 1
    return 2.0 * attempts * (settings.llm_timeout_s + settings.llm_backoff_max_s)


@dataclass(frozen=True)
class _Job:
    config_id: int
    prompt_kind: str
    request: CallRequest


def _jobs(settings: Settings, engine: Engine, config_ids: Sequence[int]) -> list[_Job]:
    """One job per (collected config, prompt kind), in the order the ids were given."""
    book = PromptBook.load(
        tasks_per_config=settings.tasks_per_config, structured=settings.llm_structured_output
    )
    model = settings.llm_model
    parameters = request_parameters(settings)
    metadata = records.load_metadata(engine, config_ids)
    jobs: list[_Job] = []
    for config_id in dict.fromkeys(config_ids):
        meta = metadata.get(config_id)
        if meta is None:
            continue
        for kind in prompt_kinds_for(meta, settings.prompt_kinds):
            prompt = book.prompt(meta, kind)
            digest = request_hash(model, prompt.messages, parameters, prompt.version)
            request = CallRequest(digest, model, prompt.messages, parameters, prompt.version)
            jobs.append(_Job(config_id, kind.value, request))
    return jobs


def generate(
    settings: Settings,
    engine: Engine,
    config_ids: Sequence[int],
    *,
    run_key: str,
    budget_usd: float | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> StepSummary:
    """Propose tasks for the given configs (those still ``collected``; others are left alone).

    ``budget_usd`` caps what this run (``run_key``, across chunks and processes) may spend; None
    takes ``settings.budget_usd``, a negative value means no cap. ``dry_run`` sends nothing and
    writes nothing: it estimates tokens and cost. Raises :class:`LLMAuthError` (after recording
    what is done) when the endpoint rejects the API key.
    """
    budget = run_budget(settings, budget_usd)
    price = model_price(settings, settings.llm_model, budget)
    jobs = _jobs(settings, engine, config_ids)
    ledger = Ledger(engine, lease_s=lease_seconds(settings))
    if dry_run:
        return _dry_run(settings, engine, ledger, jobs, price, budget)

    generations = records.upsert_generations(
        engine,
        [
            (j.config_id, j.prompt_kind, j.request.request_hash, j.request.prompt_version)
            for j in jobs
        ],
        run_key,
    )
    by_key = {(g.config_id, g.prompt_kind): g for g in generations}
    groups: dict[str, list[GenerationRow]] = defaultdict(list)
    requests: dict[str, CallRequest] = {}
    for job in jobs:
        generation = by_key[(job.config_id, job.prompt_kind)]
        if generation.status == "succeeded":
            continue
        groups[job.request.request_hash].append(generation)
        requests[job.request.request_hash] = job.request
    for members in groups.values():  # one lock order for configs that share a request
        members.sort(key=lambda g: g.config_id)

    run = _Run(settings, engine, ledger, price, budget, run_key, progress or NullProgress())
    run.progress.start(sum(len(g) for g in groups.values()), "generate")
    try:
        run.reuse_known(groups, requests)
        if groups:
            asyncio.run(run.fan_out(groups, requests))
    finally:
        run.progress.finish()
    summary = run.summary(config_ids)
    if run.stop_reason is Reason.LLM_AUTH_ERROR:
        raise LLMAuthError(
            f"the LLM endpoint {settings.llm_base_url} rejected the API key; "
            f"{summary.figures['generations_deferred']} generation(s) left pending for a later run"
        )
    return summary


class _Stopped(Exception):
    """The run stopped (rejected API key) before this call reached the wire."""


@dataclass(frozen=True)
class _Outcome:
    """What recording one answer added: task rows, truncation, tokens and dollars."""

    tasks: int
    truncated: bool
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class _Finished:
    """A call to record: a fresh answer (to store in the ledger) or a stored record (reused)."""

    call_id: int
    request: CallRequest
    members: list[GenerationRow]
    answer: LLMAnswer | None = None
    record: CallRecord | None = None


@dataclass
class _Figures:
    calls_sent: int = 0
    calls_succeeded: int = 0
    calls_failed: int = 0
    calls_reused: int = 0
    attempts: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    tasks_proposed: int = 0
    generations_succeeded: int = 0
    generations_failed: int = 0
    generations_deferred: int = 0
    responses_truncated: int = 0


ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class _Batcher(Generic[ItemT, ResultT]):
    """Runs ``fn`` over batches of items in the store's thread pool, one batch at a time.

    Items submitted while a batch is being written wait for the next one, so batches grow with
    the load: one transaction (and one thread hop) serves many calls at fan-out, one call when
    calls are few.
    """

    def __init__(
        self, run: _Run, fn: Callable[[list[ItemT]], list[ResultT]], max_batch: int = 64
    ) -> None:
        self._run = run
        self._fn = fn
        self._max = max_batch
        self._pending: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: ItemT) -> ResultT:
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                results = await self._run.db(self._fn, [item for item, _ in batch])
            except Exception as exc:  # every caller of the batch sees the store's error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class _Run:
    """One run of the step: counters, the stop flag, and the coroutines of the fan-out."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        ledger: Ledger,
        price: ModelPrice | None,
        budget: float | None,
        run_key: str,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.ledger = ledger
        self.price = price
        self.budget = budget
        self.run_key = run_key
        self.progress = progress
        self.figures = _Figures()
        self.in_flight = 0
        self.stop_reason: Reason | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._outstanding = 0  # calls this run claimed and has not recorded yet
        self._settled = 0  # calls recorded so far (wakes claims waiting for budget)
        self._settle: asyncio.Condition | None = None

    # --- store work (in threads: the event loop never waits on Postgres) -------------------------

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the store's thread pool."""
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, *args)
        )

    def claim_batch(self, items: list[tuple[CallRequest, float]]) -> list[Claim]:
        """Claim a batch of requests (one transaction)."""
        return self.ledger.claim_many(items, run_key=self.run_key, budget_usd=self.budget)

    def record_batch(self, items: list[_Finished]) -> list[_Outcome]:
        """Store answers, generations, tasks and config states for a batch (one transaction)."""
        limit = self.settings.tasks_per_config
        fresh: list[Answered] = []
        usage: dict[int, tuple[int, int, float]] = {}
        for item in items:
            if item.answer is None:
                continue
            answer, request = item.answer, item.request
            # Endpoints that report no usage are charged by our own count.
            prompt_tokens = answer.prompt_tokens
            if prompt_tokens is None:
                prompt_tokens = count_prompt_tokens(request.messages, request.model)
            completion_tokens = answer.completion_tokens
            if completion_tokens is None:
                completion_tokens = count_text_tokens(answer.text, request.model)
            cost = call_cost(self.price, prompt_tokens, completion_tokens)
            truncated = parse_answer(answer.text, finish_reason=answer.finish_reason).truncated
            usage[item.call_id] = (prompt_tokens, completion_tokens, cost)
            fresh.append(
                Answered(
                    call_id=item.call_id,
                    response=answer.text,
                    finish_reason=answer.finish_reason,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cost_usd=cost,
                    latency_ms=answer.latency_ms,
                    attempts=answer.attempts,
                    notes=(Reason.RESPONSE_TRUNCATED.value,) if truncated else (),
                )
            )
        with self.engine.begin() as conn:
            stored = mark_succeeded_many(conn, fresh)
            parsed: list[tuple[CallRecord, ParsedAnswer]] = []
            completions: list[records.Completion] = []
            paid: set[int] = set()
            for item in items:
                record = stored[item.call_id] if item.answer is not None else item.record
                assert record is not None
                answer = parse_answer(
                    record.response, finish_reason=record.finish_reason, limit=limit
                )
                parsed.append((record, answer))
                for generation in item.members:
                    share = 0.0 if record.id in paid else record.cost_usd
                    paid.add(record.id)
                    completions.append(
                        records.Completion(generation, record.id, share, answer, record.response)
                    )
            written = records.complete_generations(conn, completions)
        outcomes = []
        for item, (_, answer) in zip(items, parsed, strict=True):
            tokens_in, tokens_out, cost = usage.get(item.call_id, (0, 0, 0.0))
            tasks = sum(written.get(g.id, 0) for g in item.members) if answer.tasks else 0
            outcomes.append(_Outcome(tasks, answer.truncated, tokens_in, tokens_out, cost))
        return outcomes

    def _record_failure(
        self, call_id: int, token: str, failure: CallFailed, members: list[GenerationRow]
    ) -> None:
        """Store a failed call; its generations fail (or wait, on an authentication error)."""
        with self.engine.begin() as conn:
            mark_failed(
                conn,
                call_id,
                token,
                reason=failure.reason,
                message=str(failure),
                attempts=failure.attempts,
            )
            if failure.reason == Reason.LLM_AUTH_ERROR:
                # Not the config's fault: it waits for a run with a valid key.
                records.defer_generations(conn, members, failure.reason, str(failure))
            else:
                records.fail_generations(conn, members, failure.reason, str(failure), call_id)

    def _release(self, call_id: int, token: str, members: list[GenerationRow]) -> None:
        """Give back a claim that was never sent; its generations wait for a later run."""
        reason = Reason.LLM_AUTH_ERROR
        with self.engine.begin() as conn:
            release_claim(conn, call_id, token)
            records.defer_generations(conn, members, reason.value, _stop_message(reason))

    def _defer(self, members: list[GenerationRow], reason: Reason, message: str) -> None:
        with self.engine.begin() as conn:
            records.defer_generations(conn, members, reason.value, message)

    def _count(self, outcome: _Outcome, members: list[GenerationRow]) -> None:
        """Add a recorded answer to the run's figures (on the event loop's thread only)."""
        f = self.figures
        f.tasks_proposed += outcome.tasks
        f.tokens_in += outcome.tokens_in
        f.tokens_out += outcome.tokens_out
        f.cost_usd += outcome.cost_usd
        f.generations_succeeded += len(members)
        f.responses_truncated += len(members) if outcome.truncated else 0

    # --- the run --------------------------------------------------------------------------------

    def reuse_known(
        self, groups: dict[str, list[GenerationRow]], requests: dict[str, CallRequest]
    ) -> None:
        """Answer every request the ledger already holds, before any call is sent."""
        known = [
            _Finished(record.id, requests[digest], groups[digest], record=record)
            for digest, record in self.ledger.succeeded(groups).items()
        ]
        for start in range(0, len(known), 256):
            batch = known[start : start + 256]
            for item, outcome in zip(batch, self.record_batch(batch), strict=True):
                self._count(outcome, item.members)
                self.figures.calls_reused += 1
                self._advance(len(item.members))
        for item in known:
            del groups[item.request.request_hash], requests[item.request.request_hash]

    async def fan_out(
        self, groups: dict[str, list[GenerationRow]], requests: dict[str, CallRequest]
    ) -> None:
        """Send every remaining request, at most ``llm_concurrency`` on the wire at a time.

        A job claims its request, sends it, and records the answer. Only the sending holds one
        of the ``llm_concurrency`` wire slots; claims and records (batched store round trips)
        overlap with other jobs' requests, up to twice as many jobs being in progress as on the
        wire.
        """
        concurrency = self.settings.llm_concurrency
        self._settle = asyncio.Condition()
        wire = asyncio.Semaphore(concurrency)
        jobs = asyncio.Semaphore(2 * concurrency)
        claims: _Batcher[tuple[CallRequest, float], Claim] = _Batcher(self, self.claim_batch)
        writes: _Batcher[_Finished, _Outcome] = _Batcher(self, self.record_batch)
        threads = min(_DB_THREADS, concurrency)
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dynosaur-db") as pool:
            self._executor = pool
            async with LLMClient(self.settings) as client:
                await asyncio.gather(
                    *(
                        self._one(client, jobs, wire, claims, writes, requests[digest], members)
                        for digest, members in groups.items()
                    )
                )
            self._executor = None

    async def _claim(
        self, claims: _Batcher[tuple[CallRequest, float], Claim], request: CallRequest
    ) -> Claim:
        """Claim a request in the ledger.

        Waits while another worker sends the same request. A budget refusal while calls of this
        run are still in flight is not the end: their reservations (upper bounds) give way to
        their real, smaller costs as they finish, so the claim is asked again after each one.
        """
        reserve = 0.0
        if self.budget is not None:
            bound = prompt_tokens_bound(request.messages)
            reserve = reservation(self.price, bound, self.settings.llm_max_tokens)
        while True:
            seen = self._settled
            claim = await claims((request, reserve))
            if claim.kind == "busy":
                await asyncio.sleep(_BUSY_POLL_S)  # another worker is sending this very request
            elif (
                claim.kind == "budget"
                and self.stop_reason is None
                and (self._settled != seen or self._outstanding > 0)
            ):
                assert self._settle is not None
                async with self._settle:
                    await self._settle.wait_for(lambda seen=seen: self._settled != seen)
            else:
                if claim.kind == "claimed":
                    self._outstanding += 1
                return claim

    async def _settled_one(self) -> None:
        """A claimed call of this run is recorded: wake the claims waiting for budget."""
        self._outstanding -= 1
        self._settled += 1
        assert self._settle is not None
        async with self._settle:
            self._settle.notify_all()

    async def _one(
        self,
        client: LLMClient,
        jobs: asyncio.Semaphore,
        wire: asyncio.Semaphore,
        claims: _Batcher[tuple[CallRequest, float], Claim],
        writes: _Batcher[_Finished, _Outcome],
        request: CallRequest,
        members: list[GenerationRow],
    ) -> None:
        async with jobs:
            claim = None if self.stop_reason is not None else await self._claim(claims, request)
            if claim is None or claim.kind == "budget":
                if claim is not None and self.stop_reason is None:
                    self.stop_reason = Reason.BUDGET_EXHAUSTED
                    log.warning(
                        "budget of $%.4f reached ($%.4f spent or reserved): no new calls start",
                        self.budget or 0.0,
                        claim.spent_usd,
                    )
                reason = self.stop_reason or Reason.BUDGET_EXHAUSTED
                await self.db(self._defer, members, reason, _stop_message(reason))
                self.figures.generations_deferred += len(members)
                self._advance(len(members))
                return
            if claim.kind == "reuse":
                assert claim.record is not None and claim.call_id is not None
                done = _Finished(claim.call_id, request, members, record=claim.record)
                self._count(await writes(done), members)
                self.figures.calls_reused += 1
                self._advance(len(members))
                return
            assert claim.call_id is not None and claim.token is not None
            try:
                async with wire:
                    if self.stop_reason is Reason.LLM_AUTH_ERROR:
                        raise _Stopped
                    self.figures.calls_sent += 1
                    self.in_flight += 1
                    try:
                        answer = await client.complete(
                            request.model, request.messages, request.parameters
                        )
                    finally:
                        self.in_flight -= 1
            except _Stopped:
                # The key was rejected while this call waited for the wire: it is not sent.
                await self.db(self._release, claim.call_id, claim.token, members)
                release_token(claim.token)
                await self._settled_one()
                self.figures.generations_deferred += len(members)
                self._advance(len(members))
                return
            except CallFailed as failure:
                if failure.reason == Reason.LLM_AUTH_ERROR:
                    self.stop_reason = Reason.LLM_AUTH_ERROR
                await self.db(self._record_failure, claim.call_id, claim.token, failure, members)
                release_token(claim.token)
                await self._settled_one()
                f = self.figures
                f.calls_failed += 1
                f.attempts += failure.attempts
                if failure.reason == Reason.LLM_AUTH_ERROR:
                    f.generations_deferred += len(members)
                else:
                    f.generations_failed += len(members)
                self._advance(len(members))
                return
            outcome = await writes(_Finished(claim.call_id, request, members, answer=answer))
            release_token(claim.token)
            await self._settled_one()
            self._count(outcome, members)
            self.figures.calls_succeeded += 1
            self.figures.attempts += answer.attempts
            self._advance(len(members))

    def _advance(self, n: int) -> None:
        f = self.figures
        self.progress.advance(
            n,
            calls=f.calls_succeeded + f.calls_reused,
            in_flight=self.in_flight,
            failed=f.calls_failed,
            tokens=f.tokens_in + f.tokens_out,
            usd=round(f.cost_usd, 4),
        )

    def summary(self, config_ids: Sequence[int]) -> StepSummary:
        """Counts per config state (status, reason) after the run, and the run's figures."""
        out = StepSummary(STEP)
        states = records.config_states(self.engine, list(dict.fromkeys(config_ids)))
        for status, reason in states.values():
            out.add(status, reason)
        f = self.figures
        out.figures.update(
            {
                "calls_sent": f.calls_sent,
                "calls_succeeded": f.calls_succeeded,
                "calls_failed": f.calls_failed,
                "calls_reused": f.calls_reused,
                "attempts": f.attempts,
                "tokens_in": f.tokens_in,
                "tokens_out": f.tokens_out,
                "cost_usd": round(f.cost_usd, 8),
                "tasks_proposed": f.tasks_proposed,
                "generations_succeeded": f.generations_succeeded,
                "generations_failed": f.generations_failed,
                "generations_deferred": f.generations_deferred,
                "responses_truncated": f.responses_truncated,
            }
        )
        return out


def _stop_message(reason: Reason) -> str:
    if reason is Reason.BUDGET_EXHAUSTED:
        return "the run's LLM budget was reached before this call started"
    return "the LLM endpoint rejected the API key; a run with a valid key sends this call"


def _dry_run(
    settings: Settings,
    engine: Engine,
    ledger: Ledger,
    jobs: list[_Job],
    price: ModelPrice | None,
    budget: float | None,
) -> StepSummary:
    """Estimate what a run would send and cost, without sending or writing anything."""
    model = settings.llm_model
    known = ledger.succeeded(j.request.request_hash for j in jobs)
    with engine.connect() as conn:
        typical = conn.execute(
            sa.text(
                "SELECT avg(completion_tokens) FROM llm_call "
                "WHERE model = :m AND status = 'succeeded'"
            ),
            {"m": model},
        ).scalar()
    # Output estimate: the model's average answer so far, else the full token allowance.
    out_tokens = round(float(typical)) if typical is not None else settings.llm_max_tokens
    summary = StepSummary(STEP)
    seen: set[str] = set()
    tokens_in = 0
    cost = cost_max = 0.0
    fit = 0
    by_kind: dict[str, list[int]] = defaultdict(list)
    for job in jobs:
        digest = job.request.request_hash
        if digest in known or digest in seen:
            summary.add("dry_run", "reused")
            continue
        seen.add(digest)
        prompt_tokens = count_prompt_tokens(job.request.messages, model)
        by_kind[job.prompt_kind].append(prompt_tokens)
        tokens_in += prompt_tokens
        cost += call_cost(price, prompt_tokens, out_tokens)
        cost_max += call_cost(price, prompt_tokens, settings.llm_max_tokens)
        if budget is None or cost <= budget:
            fit += 1
        summary.add("dry_run", job.prompt_kind)
    summary.figures.update(
        {
            "configs": len({j.config_id for j in jobs}),
            "calls_to_send": len(seen),
            "calls_reused": len(known),
            "calls_within_budget": fit,
            "tokens_in_estimate": tokens_in,
            "tokens_out_estimate": out_tokens * len(seen),
            "cost_usd_estimate": round(cost, 6),
            "cost_usd_max": round(cost_max, 6),
            "budget_usd": budget if budget is not None else "none",
            "token_count_method": token_method(model),
        }
    )
    for kind, counts in sorted(by_kind.items()):
        summary.figures[f"prompt_tokens_mean_{kind}"] = round(sum(counts) / len(counts), 1)
    return summary
