"""Throughput of the Hub and LLM emulators on loopback, at zero latency.

Each emulator runs as its own process (``dynosaur emulate ... --port 0``), so the server and this
client do not share a GIL; a minimal keep-alive client keeps ``--concurrency`` requests in flight.
Every endpoint's requests/s is printed next to a baseline measured in the same run on the same
server (``/healthcheck`` for the Hub, ``/v1/models`` for the LLM: the HTTP stack with no work),
and next to the most the pipeline asks of it (its concurrency settings, with the real Hub answering
in 100 ms and a real LLM in 1 s).

    .venv/bin/python -m bench.emulators [--requests 1000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvloop

from dynosaur.generate.blocks import DatasetBlock, render_block
from dynosaur.settings import Settings

SQUAD = "dynosaur-fixtures/squad-like"
PROMPT_BLOCK = DatasetBlock(
    name="acme/kettle-reviews",
    config=None,
    fields=["review_id", "review", "stars", "title"],
    examples=[
        {
            "review_id": "r1",
            "review": "The kettle boiled quickly but the lid cracked after two weeks of daily use.",
            "stars": 2,
            "title": "Lid cracked",
        },
        {
            "review_id": "r2",
            "review": "Quiet, fast and pretty; we have used it every morning for a year now.",
            "stars": 5,
            "title": "Lovely kettle",
        },
    ],
)


@contextmanager
def emulator(args: list[str]) -> Iterator[str]:
    """Run ``dynosaur emulate ARGS --port 0`` and yield the URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dynosaur.cli.main", "emulate", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(r"export (DYNOSAUR_HUB_ENDPOINT|DYNOSAUR_LLM_BASE_URL)=(\S+)", line)
            if match:
                yield match.group(2)
                break
        else:
            raise RuntimeError("the emulator did not start")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, head: bool
) -> int:
    """Send one request on a kept-alive connection and read the whole answer; its status."""
    writer.write(request)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if not head and length:
        await reader.readexactly(length)
    return status


async def measure(
    url: str, requests: int, concurrency: int, method: str = "GET", body: bytes = b""
) -> tuple[float, int]:
    """(seconds, failures) for ``requests`` calls with ``concurrency`` connections in flight.

    A minimal HTTP/1.1 keep-alive client on asyncio streams: a general-purpose client would
    spend more time per request than the server and measure itself instead.
    """
    parsed = httpx.URL(url)
    target = parsed.raw_path.decode()
    headers = f"Host: {parsed.host}:{parsed.port}\r\nContent-Length: {len(body)}\r\n"
    if body:
        headers += "Content-Type: application/json\r\n"
    request = f"{method} {target} HTTP/1.1\r\n{headers}\r\n".encode() + body
    head = method == "HEAD"
    remaining = requests
    failures = 0

    async def worker() -> None:
        nonlocal remaining, failures
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        for _ in range(3):  # warm the connection and the emulator's caches
            await _exchange(reader, writer, request, head)
        await barrier.wait()
        while remaining > 0:
            remaining -= 1
            failures += await _exchange(reader, writer, request, head) != 200
        writer.close()

    barrier = asyncio.Barrier(concurrency + 1)
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await barrier.wait()
    start = time.perf_counter()
    await asyncio.gather(*tasks)
    return time.perf_counter() - start, failures


def run(requests: int, concurrency: int) -> list[tuple[str, str, float, float, float]]:
    settings = Settings()
    rows: list[tuple[str, str, float, float, float]] = []
    # The real Hub answers in ~100 ms and an LLM in ~1 s or more: with its concurrency settings
    # the pipeline cannot ask for more than this.
    hub_demand = settings.hub_concurrency / 0.1
    llm_demand = settings.llm_concurrency / 1.0

    with emulator(["hub"]) as hub:
        first_rows = f"/first-rows?dataset={SQUAD}&config=plain_text&split=train"
        cases = [
            ("baseline /healthcheck", "GET", "/healthcheck"),
            ("list_datasets page (25)", "GET", "/api/datasets?limit=100&sort=createdAt"),
            ("dataset_info", "GET", f"/api/datasets/{SQUAD}"),
            ("README.md (HEAD)", "HEAD", f"/datasets/{SQUAD}/resolve/main/README.md"),
            ("README.md (GET)", "GET", f"/datasets/{SQUAD}/resolve/main/README.md"),
            ("viewer /first-rows", "GET", first_rows),
        ]
        baseline = 0.0
        for name, method, path in cases:
            seconds, failures = uvloop.run(measure(hub + path, requests, concurrency, method))
            if failures:
                raise RuntimeError(f"{name}: {failures} failed requests")
            rate = requests / seconds
            baseline = baseline or rate
            rows.append(("hub", name, rate, rate / baseline, rate / hub_demand))

    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Propose up to three tasks for the last dataset."},
            {"role": "user", "content": render_block(PROMPT_BLOCK)},
        ],
        "temperature": 0,
        "max_tokens": 512,
    }
    payload = json.dumps(body).encode()
    with emulator(["llm"]) as llm:
        seconds, _ = uvloop.run(measure(llm + "/models", requests, concurrency))
        baseline = requests / seconds
        rows.append(("llm", "baseline /v1/models", baseline, 1.0, baseline / llm_demand))
        seconds, failures = uvloop.run(
            measure(llm + "/chat/completions", requests, concurrency, "POST", payload)
        )
        if failures:
            raise RuntimeError(f"chat completions: {failures} failed requests")
        rate = requests / seconds
        rows.append(("llm", "chat.completions (derive)", rate, rate / baseline, rate / llm_demand))
    return rows


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    args = parser.parse_args()
    rows = run(args.requests, args.concurrency)
    print(f"{args.requests} requests per endpoint, {args.concurrency} in flight, loopback")
    print(f"{'emulator':8} {'endpoint':28} {'req/s':>9} {'vs baseline':>12} {'vs pipeline':>12}")
    for emulator_name, name, rate, vs_baseline, vs_demand in rows:
        print(f"{emulator_name:8} {name:28} {rate:9,.0f} {vs_baseline:11.2f}x {vs_demand:11.1f}x")
    print(
        "vs pipeline: over the most the pipeline asks for "
        "(hub_concurrency / 0.1 s, llm_concurrency / 1 s)"
    )


if __name__ == "__main__":
    main()
