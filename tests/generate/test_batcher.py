"""The batcher behind the fan-out's store round trips: items submitted while a batch is being
processed go together into the next one, results come back in order, errors to every caller."""

from __future__ import annotations

import asyncio

import pytest

from dynosaur.generate.batcher import Batcher


def test_items_submitted_during_a_batch_wait_and_go_together_into_the_next() -> None:
    batches: list[list[int]] = []

    async def run() -> list[int]:
        entered, gate = asyncio.Event(), asyncio.Event()

        async def double(items: list[int]) -> list[int]:
            batches.append(items)
            entered.set()
            await gate.wait()  # the first batch stays "in the store" until the rest is queued
            return [2 * i for i in items]

        batcher: Batcher[int, int] = Batcher(double, max_batch=3)
        calls = [asyncio.create_task(batcher(0))]
        await entered.wait()
        calls += [asyncio.create_task(batcher(i)) for i in range(1, 8)]
        gate.set()
        return list(await asyncio.gather(*calls))

    assert asyncio.run(run()) == [2 * i for i in range(8)]
    assert batches == [[0], [1, 2, 3], [4, 5, 6], [7]]


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_still_runs() -> None:
    async def run() -> tuple[list[BaseException | int], int]:
        async def picky(items: list[int]) -> list[int]:
            if 0 in items:
                raise ValueError("store down")
            return items

        batcher: Batcher[int, int] = Batcher(picky, max_batch=2)
        results = await asyncio.gather(*(batcher(i) for i in range(2)), return_exceptions=True)
        return list(results), await batcher(5)

    failed, later = asyncio.run(run())
    assert [type(r) for r in failed] == [ValueError, ValueError]
    assert later == 5


@pytest.mark.parametrize("n", [1, 64, 65])
def test_every_item_gets_its_own_result(n: int) -> None:
    async def run() -> list[str]:
        async def name(items: list[int]) -> list[str]:
            return [f"#{i}" for i in items]

        batcher: Batcher[int, str] = Batcher(name)
        return list(await asyncio.gather(*(batcher(i) for i in range(n))))

    assert asyncio.run(run()) == [f"#{i}" for i in range(n)]
