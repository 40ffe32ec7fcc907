"""The emulators' options: checked once, accepted as text from the command line, and the only
definition of the emulators' knobs."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.emulators.options import HubOptions, LLMOptions
from dynosaur.emulators.snapshot import DEFAULT_SNAPSHOT


def test_hub_options_read_text_as_the_command_line_gives_it() -> None:
    options = HubOptions(now="2024-03-02", gated="a/b, c/d,", snapshot=str(DEFAULT_SNAPSHOT))
    assert options.now == datetime(2024, 3, 2, tzinfo=UTC)
    assert options.gated == ("a/b", "c/d")
    assert options.snapshot == DEFAULT_SNAPSHOT
    assert HubOptions(viewer_not_ready=["x/y"]).viewer_not_ready == ("x/y",)
    assert HubOptions(now=datetime(2024, 3, 2)).now == datetime(2024, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "knobs",
    [
        {"rate_429": 1.5},
        {"rate_5xx": -0.1},
        {"rate_429": 0.6, "rate_5xx": 0.6},
        {"latency": -1},
        {"page_size": 0},
        {"page_size": 1001},
        {"now": "soon"},
    ],
)
def test_hub_options_refuse_values_out_of_bounds(knobs: dict) -> None:
    with pytest.raises(ValueError):
        HubOptions(**knobs)


@pytest.mark.parametrize(
    "knobs", [{"invalid_share": 2.0}, {"rate_hang": 0.5, "rate_malformed": 0.6}, {"jitter": -1}]
)
def test_llm_options_refuse_values_out_of_bounds(knobs: dict) -> None:
    with pytest.raises(ValueError):
        LLMOptions(**knobs)


def test_hub_emulator_takes_options_or_the_same_knobs_as_keywords(tmp_path: Path) -> None:
    options = HubOptions(now="2024-03-02", latency=0.5, seed=4)
    assert HubEmulator(options).options == options
    assert HubEmulator(now="2024-03-02", latency=0.5, seed=4).options == options
    assert HubEmulator(DEFAULT_SNAPSHOT).options.snapshot == DEFAULT_SNAPSHOT
    with pytest.raises(TypeError):
        HubEmulator(options, seed=5)
    with pytest.raises(TypeError):
        HubEmulator(no_such_knob=1)


def test_llm_options_name_every_keyword_of_the_llm_emulator() -> None:
    keywords = set(inspect.signature(LLMEmulator).parameters) - {"port", "host"}
    assert {f.name for f in dataclasses.fields(LLMOptions)} == keywords
    defaults = {
        name: p.default
        for name, p in inspect.signature(LLMEmulator).parameters.items()
        if name in keywords
    }
    assert LLMOptions().knobs() == defaults
