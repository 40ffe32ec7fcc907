"""The asynchronous fan-out of one run: claim each request in the ledger, send it, record it.

One semaphore bounds the requests on the wire (``llm_concurrency``); claims and records are
batched store round trips (:class:`~dynosaur.generate.batcher.Batcher`) that run in a small
thread pool, so the event loop never waits on Postgres and they overlap other jobs' requests.
The run stops starting calls when the budget is reached or the endpoint rejects the API key;
what it did not send is deferred to a later run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from dynosaur.generate.batcher import Batcher
from dynosaur.generate.client import CallFailed, CallStopped, LLMClient
from dynosaur.generate.cost import prompt_tokens_bound, reservation
from dynosaur.generate.jobs import attempt_request, max_output_tokens
from dynosaur.generate.ledger import CallRequest, Claim, Ledger, release_token
from dynosaur.generate.recording import Finished, Outcome, Recorder
from dynosaur.progress import Progress
from dynosaur.reasons import Reason
from dynosaur.settings import ModelPrice, Settings
from dynosaur.store.generations import GenerationRow

log = logging.getLogger(__name__)
T = TypeVar("T")

_DB_THREADS = 4
_BUSY_POLL_S = 2.0
_REUSE_BATCH = 256
# Calls in a row that failed transiently after all their retries: the endpoint is taken as
# unreachable and the run stops sending (what it did not send is deferred, due at once).
_UNREACHABLE_STREAK = 3
_NOT_UNREACHABLE = frozenset(
    {Reason.BUDGET_EXHAUSTED, Reason.LLM_AUTH_ERROR, Reason.LLM_QUOTA_EXHAUSTED}
)

# Requests to send, by hash, with the generations each answers (several configs may share one).
Groups = dict[str, list[GenerationRow]]
# What planning a chunk of configs gives: its groups, their requests by hash, and the first
# request (attempt 0) of each prompt whose request is a later attempt, by that request's hash.
Planned = tuple[Groups, dict[str, CallRequest], dict[str, CallRequest]]
# A request the ledger already answered, and what recording it for its generations gave.
Reused = tuple[Finished, Outcome]


@dataclass
class Figures:
    """What a run did, as the step's summary reports it."""

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
    # deferred because the endpoint could not be reached (transient failures after retries, or
    # not sent once the run stopped for that): the step raises ServiceUnavailable for these
    generations_deferred_unreachable: int = 0
    responses_truncated: int = 0
    answers_unusable: int = 0  # answers paid in this run that could not be used

    def as_dict(self) -> dict[str, Any]:
        """The figures, cost rounded to 8 decimals."""
        return {**asdict(self), "cost_usd": round(self.cost_usd, 8)}


class FanOut:
    """One run's calls: counters, the stop flag, and the coroutines that claim, send, record."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        recorder: Recorder,
        *,
        price: ModelPrice | None,
        budget: float | None,
        run_key: str,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.recorder = recorder
        self.price = price
        self.budget = budget
        self.run_key = run_key
        self.progress = progress
        self.figures = Figures()
        self.in_flight = 0
        self.stop_reason: Reason | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._outstanding = 0  # calls this run claimed and has not recorded yet
        self._settled = 0  # calls recorded so far (wakes claims waiting for budget)
        self._settle: asyncio.Condition | None = None
        self._transient_streak = 0
        self._unwritten = asyncio.Semaphore(1)  # replaced per fan-out
        # The first request (attempt 0) of each prompt whose current request is a later attempt,
        # by the current request's hash (set by the step).
        self.bases: dict[str, CallRequest] = {}

    # --- store work (in threads: the event loop never waits on Postgres) -------------------------

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the store's thread pool."""
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, *args)
        )

    def _claim_many(self, items: list[tuple[CallRequest, float]]) -> list[Claim]:
        return self.ledger.claim_many(items, run_key=self.run_key, budget_usd=self.budget)

    async def _claim_batch(self, items: list[tuple[CallRequest, float]]) -> list[Claim]:
        return await self.db(self._claim_many, items)

    async def _record_batch(self, items: list[Finished]) -> list[Outcome]:
        return await self.db(self.recorder.record, items)

    # --- the run --------------------------------------------------------------------------------

    def _reuse_known(self, groups: Groups, requests: dict[str, CallRequest]) -> list[Reused]:
        """Record every request of ``groups`` that the ledger already holds (store work, in a
        store thread); :meth:`_serve_reused` then takes them out of the groups."""
        known = [
            Finished(record.id, requests[digest], groups[digest], record=record)
            for digest, record in self.ledger.succeeded(groups).items()
        ]
        reused: list[Reused] = []
        for start in range(0, len(known), _REUSE_BATCH):
            batch = known[start : start + _REUSE_BATCH]
            reused.extend(zip(batch, self.recorder.record(batch), strict=True))
        return reused

    def _serve_reused(
        self, groups: Groups, requests: dict[str, CallRequest], reused: list[Reused]
    ) -> None:
        """Count the answers the ledger already held and remove them from ``groups`` and
        ``requests``. A stored answer that is unusable is not served: its prompt's next attempt
        takes its place in ``groups``."""
        retries: list[Finished] = []
        for item, outcome in reused:
            self._count(outcome, item.members)
            self.figures.calls_reused += 1
            if outcome.state == "retry":
                retries.append(item)
            else:
                self._advance(len(item.members))
        for item, _ in reused:
            del groups[item.request.request_hash], requests[item.request.request_hash]
        for item in retries:
            base = self.bases.pop(item.request.request_hash, item.request)
            following = attempt_request(base, item.request.attempt + 1)
            groups.setdefault(following.request_hash, []).extend(item.members)
            requests[following.request_hash] = following
            self.bases[following.request_hash] = base

    def run(self, chunks: Sequence[Callable[[], Planned]]) -> None:
        """Send every request the chunks plan (see :meth:`fan_out`), from synchronous code."""
        if chunks:
            asyncio.run(self.fan_out(chunks))

    async def fan_out(self, chunks: Sequence[Callable[[], Planned]]) -> None:
        """Send every request the chunks plan, at most ``llm_concurrency`` on the wire at a time.

        Each chunk is planned in a store thread (prompts, generation rows) while the requests
        of the chunks before it are on the wire, so only the first, small chunk's planning comes
        before the first call. Answers the ledger already holds are served without a call. A
        request that an earlier chunk is still sending waits for it (and is then served from the
        ledger), so one request is never sent twice by a run.

        A job claims its request, sends it, and records the answer. Only the sending holds one
        of the ``llm_concurrency`` wire slots. Claims run ahead of the wire (at most twice the
        concurrency claimed and not answered, so that claims do not sit out their lease before
        they are sent), and recording is off the critical path: an answer leaves its job slot at
        once for the writer, which batches answers into one transaction while calls continue (at
        most ``llm_concurrency`` answers wait to be written: what a crash can leave answered but
        unrecorded is bounded by twice the concurrency).
        """
        concurrency = self.settings.llm_concurrency
        self._settle = asyncio.Condition()
        wire = asyncio.Semaphore(concurrency)
        jobs = asyncio.Semaphore(2 * concurrency)
        self._unwritten = asyncio.Semaphore(concurrency)
        claims: Batcher[tuple[CallRequest, float], Claim] = Batcher(self._claim_batch)
        writes: Batcher[Finished, Outcome] = Batcher(self._record_batch)
        threads = min(_DB_THREADS, concurrency)
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dynosaur-db") as pool:
            self._executor = pool
            async with LLMClient(self.settings) as client:
                started: list[asyncio.Task[None]] = []
                sending: dict[str, asyncio.Task[None]] = {}
                try:
                    for plan in chunks:
                        groups, requests, bases = await self.db(plan)
                        self.bases.update(bases)
                        reused = await self.db(self._reuse_known, groups, requests)
                        self._serve_reused(groups, requests, reused)
                        for digest, members in groups.items():
                            request = requests[digest]
                            job = self._one(client, jobs, wire, claims, writes, request, members)
                            task = asyncio.create_task(_after(sending.get(digest), job))
                            sending[digest] = task
                            started.append(task)
                except Exception:
                    # Planning a later chunk failed (the store): the calls already started
                    # finish and are recorded before the error is raised.
                    await asyncio.gather(*started, return_exceptions=True)
                    raise
                await asyncio.gather(*started)
            self._executor = None

    async def _claim(
        self, claims: Batcher[tuple[CallRequest, float], Claim], request: CallRequest
    ) -> Claim:
        """Claim a request in the ledger.

        Waits while another worker sends the same request. A budget refusal while calls of this
        run are still in flight is not the end: their reservations (upper bounds) give way to
        their real, smaller costs as they finish, so the claim is asked again after each one.
        """
        reserve = 0.0
        if self.budget is not None:
            bound = prompt_tokens_bound(request.messages)
            reserve = reservation(self.price, bound, max_output_tokens(self.settings))
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
                    await self._settle.wait_for(functools.partial(self._settled_since, seen))
            else:
                if claim.kind == "claimed":
                    self._outstanding += 1
                return claim

    def _settled_since(self, seen: int) -> bool:
        return self._settled != seen

    async def _settled_one(self) -> None:
        """A claimed call of this run is recorded: wake the claims waiting for budget."""
        self._outstanding -= 1
        self._settled += 1
        assert self._settle is not None
        async with self._settle:
            self._settle.notify_all()

    def halted(self) -> bool:
        """No call of this run may be sent any more (a rejected key, no quota, the endpoint
        unreachable); a budget stop still sends the calls already claimed."""
        return self.stop_reason is not None and self.stop_reason is not Reason.BUDGET_EXHAUSTED

    async def _one(
        self,
        client: LLMClient,
        jobs: asyncio.Semaphore,
        wire: asyncio.Semaphore,
        claims: Batcher[tuple[CallRequest, float], Claim],
        writes: Batcher[Finished, Outcome],
        request: CallRequest,
        members: list[GenerationRow],
    ) -> None:
        """One prompt's requests: the first, then one more per unusable answer (at most
        ``llm_max_unusable`` in all: the recorder decides)."""
        base = self.bases.get(request.request_hash, request)
        while True:
            outcome = await self._attempt(client, jobs, wire, claims, writes, request, members)
            if outcome is None or outcome.state != "retry":
                break
            request = attempt_request(base, request.attempt + 1)
        self._advance(len(members))

    async def _attempt(
        self,
        client: LLMClient,
        jobs: asyncio.Semaphore,
        wire: asyncio.Semaphore,
        claims: Batcher[tuple[CallRequest, float], Claim],
        writes: Batcher[Finished, Outcome],
        request: CallRequest,
        members: list[GenerationRow],
    ) -> Outcome | None:
        """Claim, send and record one request; None when it ended without an answer (deferred,
        failed). Recording runs outside the job's slot: the next job claims and sends while the
        writer batches this answer with others."""
        f = self.figures
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
                await self.db(self.recorder.defer, members, reason)
                self._deferred(members, reason)
                return None
            if claim.kind == "reuse":
                assert claim.record is not None and claim.call_id is not None
                done = Finished(claim.call_id, request, members, record=claim.record)
            else:
                assert claim.call_id is not None and claim.token is not None
                try:
                    async with wire:
                        if self.halted():
                            raise CallStopped
                        f.calls_sent += 1
                        self.in_flight += 1
                        try:
                            answer = await client.complete(
                                request.model,
                                request.messages,
                                request.parameters,
                                stopped=self.halted,
                            )
                        finally:
                            self.in_flight -= 1
                except CallStopped:
                    # The run stopped while this call waited for the wire or for a retry.
                    reason = self.stop_reason or Reason.LLM_ERROR
                    await self.db(
                        self.recorder.release, claim.call_id, claim.token, members, reason
                    )
                    release_token(claim.token)
                    await self._settled_one()
                    self._deferred(members, reason)
                    return None
                except CallFailed as failure:
                    self._failed(failure)
                    deferred = await self.db(
                        self.recorder.record_failure, claim.call_id, claim.token, failure, members
                    )
                    release_token(claim.token)
                    await self._settled_one()
                    f.calls_failed += 1
                    f.attempts += failure.attempts
                    if failure.stops_run:
                        f.generations_deferred += len(members)
                    else:
                        f.generations_deferred += deferred
                        f.generations_deferred_unreachable += deferred
                        f.generations_failed += len(members) - deferred
                    return None
                self._transient_streak = 0
                f.calls_succeeded += 1
                f.attempts += answer.attempts
                done = Finished(claim.call_id, request, members, answer=answer)
            await self._unwritten.acquire()  # still in the job slot: back pressure on claims
        try:
            outcome = await writes(done)
        finally:
            self._unwritten.release()
        if claim.kind == "reuse":
            f.calls_reused += 1
        else:
            release_token(claim.token)
            await self._settled_one()
        self._count(outcome, members)
        return outcome

    def _failed(self, failure: CallFailed) -> None:
        """Stop the run on a rejected key or an exhausted quota, and when the endpoint cannot be
        reached: ``_UNREACHABLE_STREAK`` calls in a row failed transiently after their retries."""
        if self.stop_reason is not None and self.stop_reason is not Reason.BUDGET_EXHAUSTED:
            return
        if failure.stops_run:
            self.stop_reason = Reason(failure.reason)
            log.warning("the LLM endpoint answered %s: no new calls start", failure.reason)
            return
        if failure.transient:
            self._transient_streak += 1
            if self._transient_streak >= _UNREACHABLE_STREAK:
                self.stop_reason = Reason(failure.reason)
                log.warning(
                    "%d LLM calls in a row failed (%s) after their retries: no new calls start; "
                    "a later run sends the rest",
                    self._transient_streak,
                    failure.reason,
                )

    def _deferred(self, members: list[GenerationRow], reason: Reason) -> None:
        self.figures.generations_deferred += len(members)
        if reason not in _NOT_UNREACHABLE:
            self.figures.generations_deferred_unreachable += len(members)

    def _count(self, outcome: Outcome, members: list[GenerationRow]) -> None:
        """Add a recorded answer to the run's figures (on the event loop's thread only)."""
        f = self.figures
        f.tasks_proposed += outcome.tasks
        f.tokens_in += outcome.tokens_in
        f.tokens_out += outcome.tokens_out
        f.cost_usd += outcome.cost_usd
        f.answers_unusable += 1 if outcome.unusable else 0
        if outcome.state == "done":
            f.generations_succeeded += len(members)
            f.responses_truncated += len(members) if outcome.truncated else 0
        elif outcome.state == "failed":
            f.generations_failed += len(members)

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


async def _after(earlier: asyncio.Task[None] | None, job: Awaitable[None]) -> None:
    """Run ``job`` once ``earlier`` (the same request, planned by an earlier chunk) is done."""
    if earlier is not None:
        with contextlib.suppress(Exception):  # its own task reports it
            await asyncio.shield(earlier)
    await job
