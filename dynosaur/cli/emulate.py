"""``dynosaur emulate``: run the Hub or the LLM emulator in the foreground for the offline demo."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from dynosaur.cli.common import console, reports_errors, table
from dynosaur.emulators.options import HubOptions, LLMOptions
from dynosaur.errors import UsageError

app = typer.Typer(
    help=(
        "Serve an offline Hugging Face Hub (with its Dataset Viewer) or an OpenAI-compatible "
        "LLM on loopback, for the demo and for trying the pipeline without spending money.\n\n"
        "Example: dynosaur emulate hub --now 2024-03-02 & dynosaur emulate llm"
    ),
    no_args_is_help=True,
)


OptionsT = TypeVar("OptionsT", HubOptions, LLMOptions)


def with_options(cls: type[OptionsT]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Offer every field of ``cls`` as a flag of the decorated command, which receives them
    built into its ``options`` argument: the flags are defined by the options class alone.

    Numbers and paths are flags of their type (with the field's bounds and path checks);
    anything else is text that the options class reads (an ISO date, comma-separated ids).
    """
    hints = typing.get_type_hints(cls)

    def flag(item: dataclasses.Field[Any]) -> inspect.Parameter:
        hint, meta = hints[item.name], item.metadata
        is_path = hint == Path | None
        as_text = not (is_path or hint in (int, float, bool))
        option = typer.Option(
            None if as_text else item.default,
            *([meta["flag"]] if meta.get("flag") else []),
            help=meta["help"],
            **{k: meta[k] for k in ("min", "max") if meta.get(k) is not None},
            **({"exists": meta["exists"], "dir_okay": meta["dir_okay"]} if is_path else {}),
        )
        annotation = str | None if as_text else hint
        return inspect.Parameter(
            item.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
        )

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = typing.get_type_hints(command)
        params = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=own[name])
            for name, p in inspect.signature(command).parameters.items()
            if name != "options"
        ] + [flag(item) for item in dataclasses.fields(cls)]

        @functools.wraps(command)
        def run(**values: Any) -> None:
            given = {f.name: values.pop(f.name) for f in dataclasses.fields(cls)}
            try:
                options = cls(**{k: v for k, v in given.items() if v is not None})
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            command(options, **values)

        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return run

    return decorate


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
@with_options(HubOptions)
def hub(
    options: HubOptions,
    port: int = typer.Option(8765, help="Port to listen on (0 = any free port)."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (0.0.0.0 in a container; loopback otherwise)."
    ),
) -> None:
    """Serve the Hub API and the Dataset Viewer from a snapshot folder until Ctrl-C.

    Example: dynosaur emulate hub --now 2024-03-03 --rate-429 0.05
    """
    from dynosaur.emulators.hub import HubEmulator

    try:
        emulator = HubEmulator(options, port=port, host=host)
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
@with_options(LLMOptions)
def llm(
    options: LLMOptions,
    port: int = typer.Option(8766, help="Port to listen on (0 = any free port)."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (0.0.0.0 in a container; loopback otherwise)."
    ),
) -> None:
    """Serve an OpenAI-compatible chat-completions API that proposes tasks, until Ctrl-C.

    Example: dynosaur emulate llm --reference ../shared/reference/dynosaur-tasks.jsonl
    """
    from dynosaur.emulators.llm import LLMEmulator

    try:
        emulator = LLMEmulator(**options.knobs(), port=port, host=host)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot start the LLM emulator: {exc}") from None

    def banner() -> list[str]:
        url = emulator.base_url
        source = (
            f"replaying {options.reference}"
            if options.reference
            else "deriving tasks from the prompts"
        )
        return [
            f"LLM emulator ({source}) on [bold]{url}[/]",
            "Point Dynosaur at it:",
            f"  export DYNOSAUR_LLM_BASE_URL={url}",
            "  export DYNOSAUR_LLM_API_KEY=emulator",
        ]

    _serve(emulator, banner, "LLM emulator")
