"""Group items that coroutines submit one at a time into batches for one batch function."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class Batcher(Generic[ItemT, ResultT]):
    """Runs ``fn`` over batches of submitted items, one batch at a time.

    Items submitted while a batch is being processed wait for the next one, so batches grow with
    the load: one store transaction (and one thread hop) serves many calls at fan-out, one call
    when calls are few. ``fn`` returns one result per item, in order; when it raises, every item
    of that batch gets the exception.
    """

    def __init__(
        self, fn: Callable[[list[ItemT]], Awaitable[list[ResultT]]], max_batch: int = 64
    ) -> None:
        self._fn = fn
        self._max = max_batch
        self._pending: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: ItemT) -> ResultT:
        """Submit one item and wait for its result."""
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                results = await self._fn([item for item, _ in batch])
            except Exception as exc:  # every caller of the batch sees the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
