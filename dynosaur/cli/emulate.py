"""``dynosaur emulate``: run the Hub or the LLM emulator in the foreground for the offline demo."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from dynosaur.cli.common import console, parse_ids, reports_errors, table
from dynosaur.errors import UsageError
from dynosaur.model import parse_utc

app = typer.Typer(
    help=(
        "Serve an offline Hugging Face Hub (with its Dataset Viewer) or an OpenAI-compatible "
        "LLM on loopback, for the demo and for trying the pipeline without spending money.\n\n"
        "Example: dynosaur emulate hub --now 2024-03-02 & dynosaur emulate llm"
    ),
    no_args_is_help=True,
)


def _now(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_utc(value)
    except ValueError:
        raise UsageError(f"--now must be an ISO date or datetime, got {value!r}") from None


def _summary(title: str, counts: dict[int, int]) -> None:
    rows = [(str(status), n) for status, n in sorted(counts.items())] or [("-", 0)]
    console.print(table(title, ["status", "requests"], rows))


def _serve(emulator: Any, banner: Callable[[], list[str]], title: str) -> None:
    """Serve until Ctrl-C, printing the banner once the port is bound, then a summary table."""

    def ready() -> None:
        for line in banner():
            console.print(line, soft_wrap=True, highlight=False)
        console.print("Press Ctrl-C to stop.")

    try:
        emulator.serve_forever(ready)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled
        pass
    except OSError as exc:
        raise UsageError(f"cannot serve: {exc}") from None
    _summary(title, emulator.status_counts)


@app.command()
@reports_errors
def hub(
    snapshot: Path | None = typer.Option(
        None, help="Snapshot folder (index.jsonl, datasets/); default: the project's own."
    ),
    port: int = typer.Option(8765, help="Port to listen on (0 = any free port)."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (0.0.0.0 in a container; loopback otherwise)."
    ),
    now: str | None = typer.Option(
        None, help="Simulated now (ISO date/datetime, UTC): datasets exist from created_at on."
    ),
    latency: float = typer.Option(0.0, min=0, help="Seconds added to every answer."),
    rate_429: float = typer.Option(0.0, min=0, max=1, help="Share of 429 answers."),
    rate_5xx: float = typer.Option(0.0, min=0, max=1, help="Share of 5xx answers."),
    retry_after: float = typer.Option(1.0, min=0, help="Retry-After of 429 answers, seconds."),
    gated: str | None = typer.Option(None, help="Extra gated dataset ids, comma-separated."),
    viewer_not_ready: str | None = typer.Option(
        None, help="Dataset ids whose viewer answers 'not ready', comma-separated."
    ),
    page_size: int = typer.Option(1000, min=1, max=1000, help="Listing page size."),
    seed: int = typer.Option(0, help="Seed of the injected faults."),
) -> None:
    """Serve the Hub API and the Dataset Viewer from a snapshot folder until Ctrl-C.

    Example: dynosaur emulate hub --now 2024-03-03 --rate-429 0.05
    """
    from dynosaur.emulators.hub import HubEmulator

    try:
        emulator = HubEmulator(
            snapshot,
            now=_now(now),
            latency=latency,
            rate_429=rate_429,
            rate_5xx=rate_5xx,
            retry_after=retry_after,
            gated=parse_ids(gated, "--gated") or [],
            viewer_not_ready=parse_ids(viewer_not_ready, "--viewer-not-ready") or [],
            seed=seed,
            page_size=page_size,
            port=port,
            host=host,
        )
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load the snapshot: {exc}") from None

    def banner() -> list[str]:
        url = emulator.url
        return [
            f"Hub emulator: {len(emulator.snapshot.entries)} datasets from "
            f"{emulator.snapshot.root} on [bold]{url}[/]",
            f"  simulated now: {emulator.now.isoformat() if emulator.now else 'real clock'}",
            "Point Dynosaur at it:",
            f"  export DYNOSAUR_HUB_ENDPOINT={url}",
            f"  export DYNOSAUR_VIEWER_URL={url}",
            f"  export HF_ENDPOINT={url}",
        ]

    _serve(emulator, banner, "hub emulator")


@app.command()
@reports_errors
def llm(
    port: int = typer.Option(8766, help="Port to listen on (0 = any free port)."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (0.0.0.0 in a container; loopback otherwise)."
    ),
    reference: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="JSONL of recorded tasks to replay (dataset, config, instruction, ...).",
    ),
    latency: float = typer.Option(0.0, min=0, help="Seconds added to every answer."),
    jitter: float = typer.Option(0.0, min=0, help="Up to this many more seconds, random."),
    rate_429: float = typer.Option(0.0, min=0, max=1, help="Share of 429 answers."),
    rate_5xx: float = typer.Option(0.0, min=0, max=1, help="Share of 5xx answers."),
    rate_hang: float = typer.Option(0.0, min=0, max=1, help="Share of requests left hanging."),
    rate_malformed: float = typer.Option(0.0, min=0, max=1, help="Share of non-JSON answers."),
    rate_truncated: float = typer.Option(0.0, min=0, max=1, help="Share of cut answers."),
    invalid_share: float = typer.Option(
        0.0, min=0, max=1, help="Share of derived tasks made invalid (to exercise the filters)."
    ),
    retry_after: float = typer.Option(1.0, min=0, help="Retry-After of 429 answers, seconds."),
    hang_seconds: float = typer.Option(3600.0, min=0, help="How long a hanging request hangs."),
    seed: int = typer.Option(0, help="Seed of the faults and derived tasks."),
    request_log: Path | None = typer.Option(
        None, dir_okay=False, help="Append one JSON line per request to this file."
    ),
) -> None:
    """Serve an OpenAI-compatible chat-completions API that proposes tasks, until Ctrl-C.

    Example: dynosaur emulate llm --reference ../shared/reference/dynosaur-tasks.jsonl
    """
    from dynosaur.emulators.llm import LLMEmulator

    try:
        emulator = LLMEmulator(
            reference=reference,
            latency=latency,
            jitter=jitter,
            rate_429=rate_429,
            rate_5xx=rate_5xx,
            rate_hang=rate_hang,
            rate_malformed=rate_malformed,
            rate_truncated=rate_truncated,
            invalid_share=invalid_share,
            retry_after=retry_after,
            hang_seconds=hang_seconds,
            seed=seed,
            request_log_path=request_log,
            port=port,
            host=host,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot start the LLM emulator: {exc}") from None

    def banner() -> list[str]:
        url = emulator.base_url
        source = f"replaying {reference}" if reference else "deriving tasks from the prompts"
        return [
            f"LLM emulator ({source}) on [bold]{url}[/]",
            "Point Dynosaur at it:",
            f"  export DYNOSAUR_LLM_BASE_URL={url}",
            "  export DYNOSAUR_LLM_API_KEY=emulator",
        ]

    _serve(emulator, banner, "LLM emulator")
